"""Delivering completion callbacks, signed with HMAC-SHA256.

When a job submitted with a ``callback_url`` reaches a final state, the worker
enqueues ``conveyor.deliver_callback``. That task POSTs the job as JSON with::

    X-Conveyor-Signature: sha256=<hex HMAC-SHA256 of the raw body under CONVEYOR_WEBHOOK_SECRET>

2xx is delivered; 5xx, 408/425/429, timeouts and connection errors are retried
with exponential backoff; any other answer is final. Every attempt is recorded
in the store (shown as ``callbacks`` on ``GET /api/v1/jobs/{id}``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import structlog
from celery import current_app, current_task

from conveyor.errors import PermanentError, TemporaryError
from conveyor.hooks.callback import DELIVER_TASK
from conveyor.jobs import Job, utcnow
from conveyor.policies.retry import RetryPolicy
from conveyor.runtime import runtime_for
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.store.observability import CallbackDelivery
from conveyor.task import task

log = structlog.get_logger("conveyor.callbacks")

SIGNATURE_HEADER = "X-Conveyor-Signature"
RETRYABLE_4XX = frozenset({408, 425, 429})
CALLBACK_RETRY = RetryPolicy(max_retries=8, base_delay=2.0, max_delay=600.0, retry_on=())


def sign(body: bytes, secret: str) -> str:
    """The ``X-Conveyor-Signature`` value of ``body``: ``sha256=<hex>``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, secret: str, signature: str) -> bool:
    """True when ``signature`` is the header conveyor sends for ``body`` (constant time)."""
    return hmac.compare_digest(sign(body, secret), signature)


def callback_body(job: Job) -> bytes:
    return json.dumps(job.to_dict(), separators=(",", ":"), sort_keys=True, default=str).encode()


def _post(job: Job, url: str, settings: Settings, attempt: int) -> httpx.Response:
    body = callback_body(job)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "conveyor-callback/1",
        SIGNATURE_HEADER: sign(body, settings.webhook_secret),
        "X-Conveyor-Job-Id": job.id,
        "X-Conveyor-Delivery-Attempt": str(attempt),
        "Idempotency-Key": f"{job.id}:{job.state.value}",
    }
    return httpx.post(url, content=body, headers=headers, timeout=settings.callback_timeout)


def _outcome(response: httpx.Response | None, error: str | None) -> tuple[bool, str | None]:
    if response is None:
        return False, error
    if 200 <= response.status_code < 300:
        return True, None
    return False, f"answered HTTP {response.status_code}"


def deliver(store: JobStore, settings: Settings, job_id: str) -> dict[str, Any]:
    """POST job ``job_id`` to its callback URL once and record the attempt; raise to retry.

    Attempts are numbered by the deliveries already recorded (a run of the task that
    finds the job not final yet sends nothing and records nothing).
    """
    job = store.get_job(job_id)
    if job is None:
        raise PermanentError(f"job {job_id} does not exist")
    if not job.callback_url:
        return {"delivered": False, "reason": "no callback_url"}
    if not job.state.is_final:
        raise TemporaryError(f"job {job_id} is {job.state}, not final yet", retry_after=0.5)
    if not settings.webhook_secret:
        raise PermanentError("CONVEYOR_WEBHOOK_SECRET is not set on this worker; not sending")
    attempt = len(store.list_callback_deliveries(job.id)) + 1
    response: httpx.Response | None = None
    error: str | None = None
    try:
        response = _post(job, job.callback_url, settings, attempt)
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    ok, reason = _outcome(response, error)
    status = response.status_code if response is not None else None
    store.add_callback_delivery(
        CallbackDelivery(job.id, attempt, job.callback_url, utcnow(), ok, status, reason)
    )
    if ok:
        log.info("callback_delivered", job_id=job.id, task=job.task, status_code=status)
        return {"delivered": True, "status_code": status}
    log.warning("callback_failed", job_id=job.id, task=job.task, error=reason, attempt=attempt)
    if status is None or status >= 500 or status in RETRYABLE_4XX:
        raise TemporaryError(f"callback to {job.callback_url} failed: {reason}")
    raise PermanentError(f"callback to {job.callback_url} refused: {reason}")


@task(name=DELIVER_TASK, retry=CALLBACK_RETRY)
def deliver_callback(job_id: str) -> dict[str, Any]:
    """POST the finished job ``job_id`` to its callback URL (internal; enqueued by conveyor)."""
    runtime = runtime_for(current_task.app if current_task else current_app)
    return deliver(runtime.store, runtime.settings, job_id)
