"""System cleanup and maintenance (queue ``cleanup``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conveyor import RetryPolicy, task
from conveyor.catalog import backup, files
from conveyor.catalog.common import Duration
from conveyor.catalog.health import HttpTarget, probe
from examples.microservice.backend import url
from examples.microservice.config import microservice_settings, schedule_of

RETRY = RetryPolicy(max_retries=2, base_delay=60.0, retry_on=(OSError,))

#: the backend's health endpoints the seed's check polls
HEALTH_PATHS = ("/health/redis", "/health/rabbitmq", "/health/postgres", "/health/search-index")


@task(name="microservice.cleanup_temp_files_task", queue="cleanup", retry=RETRY)
def cleanup_temp_files_task(
    older_than: Duration = timedelta(days=1),
) -> dict[str, Any]:
    """Delete files in MICROSERVICE_TEMP_DIR older than ``older_than`` (e.g. ``6h``, ``1d``)."""
    folder = microservice_settings().temp_dir
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = files.clean_files(
        root=str(folder), pattern="**/*", older_than=older_than
    )
    return result


@task(name="microservice.cleanup_old_logs_task", queue="cleanup", retry=RETRY)
def cleanup_old_logs_task(
    older_than: Duration = timedelta(days=30),
) -> dict[str, Any]:
    """Delete ``*.log*`` files in MICROSERVICE_LOGS_DIR older than ``older_than``."""
    folder = microservice_settings().logs_dir
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = files.clean_files(
        root=str(folder), pattern="**/*.log*", older_than=older_than
    )
    return result


@task(
    name="microservice.system_health_check_task",
    queue="cleanup",
    time_limit=120,
    schedule=schedule_of("system_health_check_task"),
)
def system_health_check_task() -> dict[str, Any]:
    """GET each of the backend's ``/health/*`` endpoints: path → status code (or error).

    An unreachable service is a result (``null`` status and its error), not a failed
    job, like the seed's check; ``healthy`` says whether all answered 200.
    """
    results: dict[str, int | None] = {}
    errors: dict[str, str] = {}
    for path in HEALTH_PATHS:
        outcome = probe(HttpTarget(url=url(path), name=path))
        results[path] = outcome.get("status_code")
        if "error" in outcome:
            errors[path] = str(outcome["error"])
    healthy = all(code == 200 for code in results.values())
    return {"services": results, "errors": errors, "healthy": healthy}


@task(
    name="microservice.daily_maintenance_task",
    queue="cleanup",
    time_limit=3600,
    schedule=schedule_of("daily_maintenance_task"),
)
def daily_maintenance_task(with_backup: bool = True, keep_backups: int = 7) -> dict[str, Any]:
    """The nightly routine (the seed's ``daily-db-backup``): back up the database, then
    clean temporary files and old logs."""
    done: dict[str, Any] = {}
    if with_backup:
        done["backup"] = backup.backup(keep=keep_backups)
    done["temp_files"] = cleanup_temp_files_task()
    done["old_logs"] = cleanup_old_logs_task()
    return done
