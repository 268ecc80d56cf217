"""MentorHub's own settings (``MENTORHUB_*``) and its beat table (seed 004)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MentorhubSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MENTORHUB_", extra="ignore")

    #: links in the emails point here (``{frontend_url}/sessions/123``)
    frontend_url: str = Field("http://localhost:3000", min_length=1)
    #: how long a verification link is valid
    verification_hours: int = Field(24, ge=1)
    #: how long a password-reset link is valid
    reset_hours: int = Field(1, ge=1)
    #: the reminder goes out this long before a session
    reminder_before: timedelta = timedelta(hours=1)


def mentorhub_settings() -> MentorhubSettings:
    return MentorhubSettings()


#: The seed's ``celery_app.conf.beat_schedule``, entry for entry (task names under
#: ``mentorhub.``; each task declares its entry with ``@task(schedule=...)``).
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "cleanup-expired-tokens-daily": {
        "task": "mentorhub.cleanup_expired_tokens",
        "schedule": timedelta(days=1),
    },
    "generate-daily-stats": {
        "task": "mentorhub.generate_daily_stats",
        "schedule": timedelta(days=1),
    },
    "send-session-reminders-hourly": {
        "task": "mentorhub.send_session_reminders",
        "schedule": timedelta(hours=1),
    },
}


def schedule_of(task_name: str) -> object:
    full = f"mentorhub.{task_name}"
    for entry in BEAT_SCHEDULE.values():
        if entry["task"] == full:
            return entry["schedule"]
    raise KeyError(full)
