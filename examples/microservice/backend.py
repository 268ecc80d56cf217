"""Calls to the main backend's internal endpoints (the seed's ``core/http.py``).

Relative paths join ``MICROSERVICE_BACKEND_URL``; the request goes through the
catalog's ``http.request`` (5xx, 429 and connection errors are temporary, so the
calling task retries them; other statuses fail the job).
"""

from __future__ import annotations

from typing import Any

from conveyor.catalog.http import request
from examples.microservice.config import microservice_settings


def url(path: str) -> str:
    return microservice_settings().backend_url.rstrip("/") + "/" + path.lstrip("/")


def _headers() -> dict[str, str]:
    key = microservice_settings().backend_api_key.get_secret_value()
    return {"Authorization": f"Bearer {key}"} if key else {}


def http_post(path: str, payload: Any = None) -> dict[str, Any]:
    """POST to the backend; ``{"status_code", "body"}`` or a Temporary/PermanentError."""
    timeout = microservice_settings().backend_timeout
    result: dict[str, Any] = request(
        "POST", url(path), headers=_headers(), json=payload, timeout=timeout
    )
    return result


def http_get(path: str) -> dict[str, Any]:
    timeout = microservice_settings().backend_timeout
    result: dict[str, Any] = request("GET", url(path), headers=_headers(), timeout=timeout)
    return result
