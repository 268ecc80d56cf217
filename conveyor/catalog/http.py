"""``http.request``: call an HTTP endpoint, typically a backend's internal trigger.

The seed microservice's periodic jobs (daily digest, exchange rates, health) are
exactly this: ``POST /internal/reports/daily-digest/trigger`` on the backend. A
relative ``url`` (starting with ``/``) is joined to ``CONVEYOR_HTTP_BASE_URL``.

Success is a status in ``expected_status`` (default: any 2xx). 5xx, 408, 425,
429, timeouts and connection errors are temporary (retried with backoff); any
other status is permanent.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any, Literal

import httpx
from pydantic import Field

from conveyor.catalog.common import retry_after_header, send, settings
from conveyor.context import current_job_id
from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task

BODY_CAP = 4096
RETRYABLE = frozenset({408, 425, 429})


def resolve_url(url: str, base: str) -> str:
    if url.startswith(("http://", "https://")):
        return url
    if url.startswith("/") and base:
        return base.rstrip("/") + url
    raise PermanentError(
        f"url {url!r} must be absolute (http:// or https://) or a path with "
        "CONVEYOR_HTTP_BASE_URL set"
    )


def _body(response: httpx.Response) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text[:BODY_CAP]


def classify(response: httpx.Response, expected: list[int] | None) -> dict[str, Any]:
    status = response.status_code
    ok = status in expected if expected else 200 <= status < 300
    if ok:
        return {"status_code": status, "body": _body(response)}
    message = f"{response.request.method} {response.request.url} answered {status}"
    if status >= 500 or status in RETRYABLE:
        raise TemporaryError(message, retry_after=retry_after_header(response))
    raise PermanentError(f"{message}: {response.text[:200]}")


def _request(
    method: Annotated[
        Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], Field(description="HTTP method.")
    ],
    url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2048,
            description="Absolute http(s) URL, or a path joined to CONVEYOR_HTTP_BASE_URL.",
        ),
    ],
    headers: Annotated[dict[str, str] | None, Field(description="Extra request headers.")] = None,
    json: Annotated[Any, Field(description="JSON body (not sent with GET/HEAD).")] = None,
    params: Annotated[dict[str, str] | None, Field(description="Query string parameters.")] = None,
    timeout: Annotated[
        float, Field(gt=0, le=300, description="Seconds to wait for the answer.")
    ] = 30.0,
    expected_status: Annotated[
        list[int] | None,
        Field(description="Status codes that count as success (default: any 2xx)."),
    ] = None,
) -> dict[str, Any]:
    """Send one HTTP request; the status code and (JSON or text) body are the result."""
    target = resolve_url(url, settings().http_base_url)
    sent_headers = {"User-Agent": "conveyor-http/1"}
    job_id = current_job_id()
    if job_id:
        sent_headers["Idempotency-Key"] = job_id
    sent_headers.update(headers or {})
    outgoing = httpx.Request(
        method,
        target,
        headers=sent_headers,
        json=json if json is not None and method not in ("GET", "HEAD") else None,
        params=params,
    )
    return classify(send(outgoing, timeout), expected_status)


# The parameter ``json`` (the documented contract) shadows the deprecated ``BaseModel.json``
# on the generated params model; pydantic warns about that, harmlessly.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)
    request = task(
        name="http.request",
        queue="default",
        retry=RetryPolicy(max_retries=5, base_delay=2.0, max_delay=120.0, retry_on=()),
        time_limit=330,
        soft_time_limit=310,
    )(_request)
