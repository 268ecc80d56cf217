"""``telegram.send_message``: a message through the Telegram Bot API.

``POST {CONVEYOR_TELEGRAM_API_URL}/bot{token}/sendMessage``. A 429 is retried
after the ``parameters.retry_after`` Telegram sends; "bot was blocked by the
user", "chat not found" and other 400/403 answers are permanent (reported, never
retried); 5xx and network errors are retried up to 5 times with backoff.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
from pydantic import Field

from conveyor.catalog.common import Recipient, json_body, opted_out, require, send, settings
from conveyor.catalog.common import skipped as skipped_result
from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.ratelimit import Limit
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task

TIMEOUT = 15.0


def _description(response: httpx.Response) -> str:
    body = json_body(response)
    return str(body.get("description") or response.text[:200])


def classify(response: httpx.Response) -> dict[str, Any]:
    """The sent message on success; TemporaryError / PermanentError otherwise."""
    body = json_body(response)
    if response.status_code == 200 and body.get("ok"):
        message = body.get("result") or {}
        return {"sent": 1, "skipped": 0, "message_id": message.get("message_id")}
    status = response.status_code
    description = _description(response)
    if status == 429:
        parameters = body.get("parameters") or {}
        retry_after = parameters.get("retry_after")
        delay = float(retry_after) if isinstance(retry_after, (int, float)) else None
        raise TemporaryError(f"telegram rate limit: {description}", retry_after=delay)
    if status >= 500:
        raise TemporaryError(f"telegram answered {status}: {description}")
    raise PermanentError(f"telegram refused the message ({status}): {description}")


@task(
    name="telegram.send_message",
    queue="notifications",
    retry=RetryPolicy(max_retries=5, base_delay=1.0, max_delay=60.0, retry_on=()),
    time_limit=60,
    soft_time_limit=45,
    # one bucket for every task that talks to the Bot API (its global limit is ~30 msg/s)
    rate_limit=Limit("telegram", "30/s"),
)
def send_message(
    chat_id: Annotated[int | str, Field(description="Chat id (number) or @channelusername.")],
    text: Annotated[str, Field(min_length=1, max_length=4096, description="Message text.")],
    parse_mode: Annotated[
        Literal["HTML", "Markdown", "MarkdownV2"] | None,
        Field(description="Telegram formatting of text."),
    ] = None,
    disable_notification: Annotated[bool, Field(description="Deliver silently.")] = False,
    recipient: Annotated[
        Recipient | None,
        Field(description="The recipient's preferences; opted_out skips the message."),
    ] = None,
) -> dict[str, Any]:
    """Send ``text`` to ``chat_id`` via the Bot API; skipped if the recipient opted out."""
    if opted_out(recipient):
        return skipped_result()
    cfg = settings()
    token = require(cfg.telegram_bot_token.get_secret_value(), "CONVEYOR_TELEGRAM_BOT_TOKEN")
    payload: dict[str, Any] = {"chat_id": chat_id, "text": text}
    if parse_mode:
        payload["parse_mode"] = parse_mode
    if disable_notification:
        payload["disable_notification"] = True
    url = f"{cfg.telegram_api_url.rstrip('/')}/bot{token}/sendMessage"
    response = send(httpx.Request("POST", url, json=payload), TIMEOUT)
    result = classify(response)
    result["chat_id"] = chat_id
    return result
