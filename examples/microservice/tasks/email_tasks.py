"""Email tasks (queue ``email``): thin wrappers over the catalog's ``email.*``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from conveyor import RetryPolicy, task
from conveyor.catalog import email
from examples.microservice.backend import http_post
from examples.microservice.config import schedule_of

#: SMTP trouble (temporary) is retried with backoff; a refused address is not
RETRY = RetryPolicy(max_retries=3, base_delay=60.0, max_delay=600.0, retry_on=())


@task(name="microservice.send_email_task", queue="email", retry=RETRY, time_limit=120)
def send_email_task(
    to_email: email.Address,
    subject: Annotated[str, Field(min_length=1, max_length=300)],
    body: str,
    html: str | None = None,
) -> dict[str, Any]:
    """Send one email (plain text, optionally with an HTML part)."""
    result: dict[str, Any] = email.send(to=[to_email], subject=subject, body=body, html=html)
    return result


@task(name="microservice.send_bulk_email_task", queue="email", retry=RETRY, time_limit=1800)
def send_bulk_email_task(
    recipients: Annotated[list[email.Address], Field(min_length=1, max_length=10000)],
    subject: Annotated[str, Field(min_length=1, max_length=300)],
    body: str,
    per_second: Annotated[float, Field(gt=0, le=1000)] = 10.0,
) -> dict[str, Any]:
    """Send the same message to many addresses (one SMTP connection per 50)."""
    result: dict[str, Any] = email.send_bulk(
        recipients=[email.BulkRecipient(email=address) for address in recipients],
        subject=subject,
        body=body,
        per_second=per_second,
    )
    return result


@task(name="microservice.send_notification_to_backend", queue="email", retry=RETRY)
def send_notification_to_backend(
    event: Annotated[str, Field(min_length=1, max_length=100)],
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Tell the main backend that something happened (``POST /internal/notifications``)."""
    return http_post("/internal/notifications", {"event": event, "payload": payload or {}})


@task(
    name="microservice.send_daily_digest_task",
    queue="email",
    retry=RETRY,
    schedule=schedule_of("send_daily_digest_task"),
)
def send_daily_digest_task() -> str:
    """Ask the backend to build and send the daily digest (08:00)."""
    http_post("/internal/reports/daily-digest/trigger")
    return "daily digest triggered"
