"""Sending a user a Telegram message: a ``telegram.send_message`` job of the catalog.

The message becomes its own job (its own retries on 429/5xx, the shared
``telegram`` 30/s limit, visible in the dashboard). Without a bot token
(``CONVEYOR_TELEGRAM_BOT_TOKEN``, e.g. ``conveyor up --example mluvme`` on a
laptop) nothing is sent: the text is returned as a dry run instead.
"""

from __future__ import annotations

from typing import Any

import conveyor.catalog.telegram  # noqa: F401  (registers telegram.send_message)
from conveyor.settings import get_settings
from conveyor.submit import SubmitRequest
from examples.mluvme.dispatch import worker_submitter
from examples.mluvme.models import User

TELEGRAM_TASK = "telegram.send_message"


def send_telegram(user: User, text: str) -> dict[str, Any]:
    """Submit a Telegram message to ``user``; ``{"sent": ..., "job_id" | "dry_run", "text"}``."""
    if not get_settings().telegram_bot_token.get_secret_value():
        return {"sent": False, "dry_run": True, "chat_id": user.telegram_id, "text": text}
    job = worker_submitter().submit(
        SubmitRequest(task=TELEGRAM_TASK, kwargs={"chat_id": user.telegram_id, "text": text})
    )
    return {"sent": True, "job_id": job.id, "chat_id": user.telegram_id, "text": text}


def skipped(reason: str, **details: Any) -> dict[str, Any]:
    """The result of a notification task that decided not to send."""
    return {"sent": False, "skipped": reason, **details}
