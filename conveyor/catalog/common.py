"""Pieces every catalog family shares: settings at run time, durations, recipients, HTTP."""

from __future__ import annotations

import base64
import functools
import re
import ssl
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import certifi
import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from conveyor.errors import PermanentError, TemporaryError
from conveyor.settings import Settings, get_settings

LOCALES = ("en", "ru", "uk")
DEFAULT_LOCALE = "en"

_COMPACT = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_UNITS = (7 * 86400, 86400, 3600, 60, 1)

DURATION_HELP = (
    'seconds (a number) or a duration string: compact "30d", "12h", "1d12h", "90m", "2w" '
    '(units w d h m s) or ISO-8601 "P30D", "PT12H"'
)


def settings() -> Settings:
    """The process settings, read when a task runs (tests clear ``get_settings``'s cache)."""
    return get_settings()


def parse_duration(value: Any) -> timedelta:
    """Seconds (int/float), ``timedelta``, compact ``"30d"``/``"1d12h"`` or ISO-8601 ``"P30D"``."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value.strip())
    else:
        raise ValueError(f"expected {DURATION_HELP}")
    if seconds <= 0:
        raise ValueError("duration must be positive")
    return timedelta(seconds=seconds)


def _parse_duration_text(text: str) -> float:
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    match = _COMPACT.fullmatch(text) or _ISO.fullmatch(text.upper())
    if match is None or not any(match.groups()):
        raise ValueError(f"invalid duration {text!r}: expected {DURATION_HELP}")
    return float(sum(int(g or 0) * unit for g, unit in zip(match.groups(), _UNITS, strict=True)))


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "examples": ["30d", "12h", "P30D"]},
            ],
            "description": DURATION_HELP,
        }
    ),
]


class Recipient(BaseModel):
    """A recipient's preferences: locale, time zone, and whether they opted out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    locale: str | None = Field(None, description="Language for templates (en, ru, uk).")
    timezone: str | None = Field(None, description="IANA time zone, e.g. Europe/Prague.")
    opted_out: bool = Field(False, description="True: the message is skipped, not sent.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def opted_out(recipient: Recipient | None) -> bool:
    return recipient is not None and recipient.opted_out


def skipped(reason: str = "opted_out") -> dict[str, Any]:
    """The result of a message not sent because of the recipient's preferences."""
    return {"sent": 0, "skipped": 1, "reason": reason}


def require(value: str, setting: str) -> str:
    """``value`` if set; a PermanentError naming the missing setting otherwise."""
    if not value:
        raise PermanentError(f"{setting} is not configured")
    return value


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (building one per request is slow)."""
    return ssl.create_default_context(cafile=certifi.where())


def send(request: httpx.Request, timeout: float) -> httpx.Response:
    """Send ``request``; timeouts and connection errors become TemporaryError."""
    try:
        with httpx.Client(timeout=timeout, verify=tls_context()) as client:
            return client.send(request)
    except httpx.TimeoutException as exc:
        raise TemporaryError(f"timed out after {timeout}s: {exc}") from exc
    except httpx.TransportError as exc:
        raise TemporaryError(f"connection failed: {exc}") from exc


def retry_after_header(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{}`` when the body is not a JSON object."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def basic_auth(user: str, password: str) -> str:
    """An ``Authorization`` header value for HTTP basic auth."""
    raw = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")
