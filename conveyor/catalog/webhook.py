"""``webhook.post``: POST a JSON payload to a URL.

2xx succeeds (status code and the start of the response body are the result);
5xx, connection errors and timeouts are temporary (retried with backoff); 4xx
is permanent (never retried). The job id is sent as ``Idempotency-Key`` so a
receiver can drop a redelivered request.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import AnyHttpUrl, Field

from conveyor.context import current_job_id
from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task

BODY_CAP = 4096
RETRYABLE_4XX = frozenset({408, 425, 429})


def _headers(headers: dict[str, str] | None) -> dict[str, str]:
    out = {"User-Agent": "conveyor-webhook/1"}
    job_id = current_job_id()
    if job_id:
        out["Idempotency-Key"] = job_id
    out.update(headers or {})
    return out


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def classify(response: httpx.Response) -> dict[str, Any]:
    """The result for a 2xx; raises TemporaryError / PermanentError otherwise."""
    status = response.status_code
    if 200 <= status < 300:
        return {"status_code": status, "body": response.text[:BODY_CAP]}
    message = f"{response.request.method} {response.request.url} answered {status}"
    if status >= 500 or status in RETRYABLE_4XX:
        raise TemporaryError(message, retry_after=_retry_after(response))
    raise PermanentError(f"{message}: {response.text[:200]}")


@task(
    name="webhook.post",
    queue="notifications",
    retry=RetryPolicy(max_retries=5, base_delay=2.0, max_delay=120.0, retry_on=()),
)
def post(
    url: AnyHttpUrl,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
    timeout: float = Field(10.0, gt=0, le=300),
) -> dict[str, Any]:
    """POST ``payload`` as JSON to ``url``; 2xx succeeds, 5xx/timeouts retry, 4xx fails."""
    try:
        response = httpx.post(str(url), json=payload, headers=_headers(headers), timeout=timeout)
    except httpx.TimeoutException as exc:
        raise TemporaryError(f"timed out after {timeout}s: {exc}") from exc
    except httpx.TransportError as exc:
        raise TemporaryError(f"connection failed: {exc}") from exc
    return classify(response)
