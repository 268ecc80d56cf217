"""``push.send``: push notifications through FCM HTTP v1, one request per device token.

``POST {CONVEYOR_FCM_API_URL}/v1/projects/{CONVEYOR_FCM_PROJECT_ID}/messages:send``
with ``Authorization: Bearer …``. The bearer token is ``CONVEYOR_FCM_ACCESS_TOKEN``,
or one obtained with the service-account key in ``CONVEYOR_FCM_SERVICE_ACCOUNT_FILE``
(JWT-bearer grant at the key's ``token_uri``; needs ``conveyor[fcm]``), or one
fetched from ``CONVEYOR_FCM_TOKEN_URL`` (a metadata server or token sidecar
answering ``{"access_token": …, "expires_in": …}``); fetched tokens are cached
until a minute before they expire.

Every token gets its own result. Tokens FCM reports as gone (404 ``UNREGISTERED``)
or malformed (400 ``INVALID_ARGUMENT``) are listed in ``invalid_tokens`` so the
caller can prune them — they are not errors. 429/5xx for some tokens are
reported with ``temporary: true``; only when nothing was delivered at all is the
job retried (so a retry never pushes twice to the same device).
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from pydantic import Field

from conveyor.catalog.common import (
    Recipient,
    json_body,
    opted_out,
    require,
    retry_after_header,
    send,
    settings,
    skipped,
)
from conveyor.catalog.fcm_auth import access_token
from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task

TIMEOUT = 15.0
INVALID_TOKEN_CODES = frozenset({"UNREGISTERED", "INVALID_ARGUMENT"})


def _error_code(body: dict[str, Any]) -> str:
    error = body.get("error") or {}
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status") or "")


def token_result(token: str, response: httpx.Response) -> dict[str, Any]:
    """The outcome for one device token; PermanentError if the credentials are refused."""
    body = json_body(response)
    status = response.status_code
    if status == 200:
        return {"token": token, "status": "sent", "message_id": body.get("name")}
    code = _error_code(body)
    if status in (401, 403):
        raise PermanentError(f"FCM refused the credentials ({status} {code})")
    if code in INVALID_TOKEN_CODES or status == 404:
        return {"token": token, "status": "invalid", "error": code or str(status)}
    temporary = status == 429 or status >= 500
    return {
        "token": token,
        "status": "failed",
        "error": code or str(status),
        "temporary": temporary,
        "retry_after": retry_after_header(response),
    }


def _push_one(url: str, bearer: str, message: dict[str, Any], token: str) -> dict[str, Any]:
    request = httpx.Request(
        "POST",
        url,
        json={"message": {**message, "token": token}},
        headers={"Authorization": f"Bearer {bearer}"},
    )
    try:
        response = send(request, TIMEOUT)
    except TemporaryError as exc:
        return {"token": token, "status": "failed", "error": str(exc), "temporary": True}
    return token_result(token, response)


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and lists over the per-token results; retries if nothing at all went out."""
    sent = sum(1 for r in results if r["status"] == "sent")
    invalid = [r["token"] for r in results if r["status"] == "invalid"]
    failed = [r for r in results if r["status"] == "failed"]
    if sent == 0 and not invalid and failed and all(r.get("temporary") for r in failed):
        delays = [r["retry_after"] for r in failed if r.get("retry_after")]
        raise TemporaryError(
            f"FCM failed for all {len(failed)} tokens", retry_after=max(delays, default=None)
        )
    return {
        "sent": sent,
        "skipped": 0,
        "invalid_tokens": invalid,
        "failed": len(failed),
        "results": results,
    }


@task(
    name="push.send",
    queue="notifications",
    retry=RetryPolicy(max_retries=5, base_delay=2.0, max_delay=120.0, retry_on=()),
    time_limit=300,
    soft_time_limit=240,
    rate_limit="10/s",
)
def send_push(
    tokens: Annotated[
        list[str],
        Field(
            min_length=1,
            max_length=500,
            description="FCM registration tokens (duplicates are sent once).",
        ),
    ],
    title: Annotated[str, Field(min_length=1, max_length=200, description="Notification title.")],
    body: Annotated[str, Field(max_length=2000, description="Notification text.")] = "",
    data: Annotated[
        dict[str, str] | None,
        Field(description="Extra key/value data delivered to the app (strings only)."),
    ] = None,
    recipient: Annotated[
        Recipient | None,
        Field(description="The recipient's preferences; opted_out skips the message."),
    ] = None,
) -> dict[str, Any]:
    """Push a notification to every device token; invalid tokens are reported for pruning."""
    if opted_out(recipient):
        return skipped()
    cfg = settings()
    project = require(cfg.fcm_project_id, "CONVEYOR_FCM_PROJECT_ID")
    bearer = access_token(cfg)
    url = f"{cfg.fcm_api_url.rstrip('/')}/v1/projects/{project}/messages:send"
    message: dict[str, Any] = {"notification": {"title": title, "body": body}}
    if data:
        message["data"] = data
    results = [_push_one(url, bearer, message, token) for token in dict.fromkeys(tokens)]
    return summarize(results)
