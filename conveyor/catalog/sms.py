"""``sms.send``: a text message through a Twilio-compatible REST API.

``POST {CONVEYOR_SMS_API_URL}/2010-04-01/Accounts/{sid}/Messages.json``,
form-encoded ``To``/``From``/``Body``, HTTP basic auth (account SID + auth
token). 429 and 5xx are retried; other 4xx (invalid number, unverified
recipient, ...) are permanent.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from pydantic import Field

from conveyor.catalog.common import (
    Recipient,
    basic_auth,
    json_body,
    opted_out,
    require,
    retry_after_header,
    send,
    settings,
    skipped,
)
from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task

TIMEOUT = 15.0
PHONE = r"^\+?[1-9]\d{4,15}$"


def classify(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    status = response.status_code
    if 200 <= status < 300:
        return {"sent": 1, "skipped": 0, "sid": body.get("sid"), "status": body.get("status")}
    message = f"SMS API answered {status}: {body.get('message') or response.text[:200]}"
    if status == 429 or status >= 500:
        raise TemporaryError(message, retry_after=retry_after_header(response))
    raise PermanentError(f"{message} (code {body.get('code')})")


@task(
    name="sms.send",
    queue="notifications",
    retry=RetryPolicy(max_retries=5, base_delay=2.0, max_delay=120.0, retry_on=()),
    time_limit=60,
    soft_time_limit=45,
    rate_limit="10/s",
)
def send_sms(
    to: Annotated[str, Field(pattern=PHONE, description="E.164 number, e.g. +420123456789.")],
    text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=1600,
            description="Message text (long texts are split by the provider).",
        ),
    ],
    recipient: Annotated[
        Recipient | None,
        Field(description="The recipient's preferences; opted_out skips the message."),
    ] = None,
) -> dict[str, Any]:
    """Send ``text`` to ``to``; skipped if the recipient opted out."""
    if opted_out(recipient):
        return skipped()
    cfg = settings()
    sid = require(cfg.sms_account_sid, "CONVEYOR_SMS_ACCOUNT_SID")
    token = require(cfg.sms_auth_token.get_secret_value(), "CONVEYOR_SMS_AUTH_TOKEN")
    sender = require(cfg.sms_from, "CONVEYOR_SMS_FROM")
    url = f"{cfg.sms_api_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
    request = httpx.Request(
        "POST",
        url,
        data={"To": to, "From": sender, "Body": text},
        headers={"Authorization": basic_auth(sid, token)},
    )
    return classify(send(request, TIMEOUT))
