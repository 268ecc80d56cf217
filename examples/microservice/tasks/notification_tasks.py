"""Push, SMS and batches of notifications (queue ``notifications``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from conveyor import RetryPolicy, task
from conveyor.catalog import push, sms
from conveyor.catalog.fanout import fanout

RETRY = RetryPolicy(max_retries=5, base_delay=2.0, max_delay=120.0, retry_on=())


@task(name="microservice.send_push_notification_task", queue="notifications", retry=RETRY)
def send_push_notification_task(
    user_tokens: Annotated[list[str], Field(min_length=1, max_length=500)],
    title: Annotated[str, Field(min_length=1, max_length=200)],
    body: Annotated[str, Field(max_length=2000)] = "",
    data: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Send a push notification to the users' devices (FCM, through ``push.send``)."""
    result: dict[str, Any] = push.send_push(tokens=user_tokens, title=title, body=body, data=data)
    return result


@task(name="microservice.send_sms_task", queue="notifications", retry=RETRY, time_limit=60)
def send_sms_task(
    phone_number: Annotated[str, Field(pattern=sms.PHONE)],
    message: Annotated[str, Field(min_length=1, max_length=1600)],
) -> dict[str, Any]:
    """Send one SMS (a Twilio-compatible API, through ``sms.send``)."""
    result: dict[str, Any] = sms.send_sms(to=phone_number, text=message)
    return result


class Notification(BaseModel):
    """One queued notification: an email, a push or an SMS."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "push", "sms"]
    #: an address, a phone number, or device tokens (push)
    to: str | list[str]
    title: str = Field("", max_length=300)
    body: str = Field("", max_length=2000)


def _job_arguments(item: Notification) -> tuple[str, dict[str, Any]]:
    targets = item.to if isinstance(item.to, list) else [item.to]
    if item.channel == "email":
        return "microservice.send_email_task", {
            "to_email": targets[0],
            "subject": item.title,
            "body": item.body,
        }
    if item.channel == "sms":
        return "microservice.send_sms_task", {"phone_number": targets[0], "message": item.body}
    return "microservice.send_push_notification_task", {
        "user_tokens": targets,
        "title": item.title,
        "body": item.body,
    }


@task(name="microservice.process_notification_queue_task", queue="notifications")
def process_notification_queue_task(
    notifications: Annotated[list[Notification], Field(min_length=1, max_length=10000)],
    per_second: Annotated[int, Field(ge=1, le=1000)] = 10,
) -> dict[str, Any]:
    """Turn a batch of notifications into one job each (email, push or SMS), at most
    ``per_second`` a second across the cluster; returns the job ids per channel."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in notifications:
        name, kwargs = _job_arguments(item)
        grouped.setdefault(name, []).append(kwargs)
    submitted: dict[str, list[str]] = {}
    for name, items in grouped.items():
        outcome = fanout(name, items, rate=f"{per_second}/s")
        submitted[name.removeprefix("microservice.")] = outcome.job_ids
    return {"count": len(notifications), "jobs": submitted}
