"""The microservice's own settings (``MICROSERVICE_*``) and its beat table (seed 003).

conveyor's settings (broker, job store, SMTP, SMS, FCM) stay ``CONVEYOR_*``; these
are the few the seed's ``.env.example`` adds on top: where the main backend is and
which folders the cleanup tasks keep tidy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery.schedules import crontab
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: the seed's queues (``celery worker -Q email,notifications,data_processing,cleanup``)
QUEUES = ("email", "notifications", "data_processing", "cleanup")


class MicroserviceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MICROSERVICE_", extra="ignore")

    #: the seed's ``BACKEND_API_URL``: the main backend whose internal endpoints the
    #: periodic jobs call
    backend_url: str = Field("http://app:8000", min_length=1)
    #: sent as ``Authorization: Bearer`` to the backend ("API key authentication for
    #: backend communication"); empty = no header
    backend_api_key: SecretStr = SecretStr("")
    backend_timeout: float = Field(30.0, gt=0, le=300)
    #: folder of temporary files that ``cleanup_temp_files_task`` empties
    temp_dir: Path = Path("var/microservice/tmp")
    #: folder of log files that ``cleanup_old_logs_task`` prunes
    logs_dir: Path = Path("var/microservice/logs")


def microservice_settings() -> MicroserviceSettings:
    """Read fresh on every call: cheap, and tests can change the environment."""
    return MicroserviceSettings()


#: The seed's ``app.conf.beat_schedule``, name for name (task names under ``microservice.``).
#: Each task declares its entry with ``@task(schedule=...)``, so the stored schedule is
#: named after the task and runs on the task's queue (the seed's ``options.queue``).
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # 1) daily database backup at 02:00
    "daily-db-backup": {
        "task": "microservice.daily_maintenance_task",
        "schedule": crontab(hour=2, minute=0),
        "options": {"queue": "cleanup"},
    },
    # 2) exchange rates every hour
    "update-exchange-rates-hourly": {
        "task": "microservice.update_exchange_rates_task",
        "schedule": crontab(minute=0),
        "options": {"queue": "data_processing"},
    },
    # 3) daily email digest at 08:00
    "send-daily-email-digest": {
        "task": "microservice.send_daily_digest_task",
        "schedule": crontab(hour=8, minute=0),
        "options": {"queue": "email"},
    },
    # 4) health check of the related services every 5 minutes
    "system-health-check": {
        "task": "microservice.system_health_check_task",
        "schedule": crontab(minute="*/5"),
        "options": {"queue": "cleanup"},
    },
}


def schedule_of(task_name: str) -> object:
    """The beat-table timing of ``microservice.<task_name>``."""
    full = f"microservice.{task_name}"
    for entry in BEAT_SCHEDULE.values():
        if entry["task"] == full:
            return entry["schedule"]
    raise KeyError(full)
