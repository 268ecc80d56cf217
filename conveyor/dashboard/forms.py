"""Form input the pages share: JSON fields and precise messages for refused arguments."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from conveyor.errors import ArgumentsInvalid, SubmitRefused, TaskNotFound

#: Longest JSON text a form field may hold.
MAX_JSON = 32 * 1024


class FormError(Exception):
    """One field of a form is wrong: ``field`` names it, ``message`` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def json_value(field: str, text: str, kind: type[list[Any]] | type[dict[str, Any]]) -> Any:
    """``text`` parsed as a JSON array or object (``kind``); empty text is an empty one."""
    if not text.strip():
        return kind()
    if len(text) > MAX_JSON:
        raise FormError(field, f"at most {MAX_JSON} characters of JSON")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormError(
            field, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(value, kind):
        wanted = 'object, e.g. {"name": "value"}' if kind is dict else "array, e.g. [1, 2]"
        raise FormError(field, f"must be a JSON {wanted}; this is {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    kinds = ((bool, "a boolean"), (dict, "an object"), (list, "an array"), (str, "a string"))
    if value is None:
        return "null"
    return next((name for kind, name in kinds if isinstance(value, kind)), "a number")


def _location(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error.get("loc", ())) or "arguments"


def describe_refusal(exc: ArgumentsInvalid | SubmitRefused | TaskNotFound) -> str:
    """A person-readable sentence naming each bad argument and why it is bad."""
    if isinstance(exc, ArgumentsInvalid):
        problems = "; ".join(f"{_location(e)}: {e.get('msg', 'invalid')}" for e in exc.errors)
        return f"the task {exc.task!r} refuses these arguments: {problems}"
    return str(exc)


def describe_validation(exc: ValidationError) -> dict[str, str]:
    """pydantic errors as ``{field: message}`` (the first message of each field)."""
    out: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error.get("loc", ())]
        field = loc[0] if loc else "form"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if len(loc) > 1:
            message = f"{'.'.join(loc[1:])}: {message}"
        out.setdefault(field, message)
    return out
