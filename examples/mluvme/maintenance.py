"""Maintenance tasks (seed: ``backend/tasks/maintenance.py``), on ``maintenance``.

On PostgreSQL ``refresh_materialized_views`` refreshes a real materialized view
and ``optimize_database`` runs ``ANALYZE``. On SQLite, which has no materialized
views, the same summary is a plain table rebuilt in one transaction, and
``ANALYZE`` plus ``PRAGMA optimize`` stand in for PostgreSQL's statistics.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Delete, delete
from sqlalchemy.orm import Session

from conveyor.policies.retry import RetryPolicy
from conveyor.task import task
from examples.mluvme.clock import resolve_now
from examples.mluvme.db import ACTIVITY_VIEW, analyze, refresh_activity_view, session
from examples.mluvme.models import DailyStats, Message, PlatformMetrics, WeeklyReport
from examples.mluvme.schedules import SCHEDULES

QUEUE = "maintenance"
#: the seed deletes data older than a year
RETENTION = timedelta(days=365)


def _delete(db: Session, statement: Delete) -> int:
    """Run a DELETE; how many rows it removed."""
    return int(getattr(db.execute(statement), "rowcount", 0))


@task(
    name="mluvme.cleanup_old_data",
    queue=QUEUE,
    retry=RetryPolicy(max_retries=3),
    schedule=SCHEDULES["mluvme.cleanup_old_data"],
)
def cleanup_old_data(now: datetime | None = None) -> dict[str, Any]:
    """Delete messages, statistics, reports and metrics older than one year.

    Users and their milestone awards stay (the awards keep the bonuses idempotent).
    """
    moment = resolve_now(now)
    cutoff = moment - RETENTION
    with session() as db:
        deleted = {
            "messages": _delete(db, delete(Message).where(Message.created_at < cutoff)),
            "daily_stats": _delete(db, delete(DailyStats).where(DailyStats.day < cutoff.date())),
            "weekly_reports": _delete(
                db, delete(WeeklyReport).where(WeeklyReport.week_end < cutoff.date())
            ),
            "platform_metrics": _delete(
                db, delete(PlatformMetrics).where(PlatformMetrics.captured_at < cutoff)
            ),
        }
    return {"cutoff": cutoff.isoformat(), "deleted": deleted}


@task(
    name="mluvme.refresh_materialized_views",
    queue=QUEUE,
    retry=RetryPolicy(max_retries=3),
    schedule=SCHEDULES["mluvme.refresh_materialized_views"],
)
def refresh_materialized_views() -> dict[str, Any]:
    """Refresh the daily activity summary (a materialized view on PostgreSQL)."""
    with session() as db:
        how = refresh_activity_view(db)
        dialect = db.get_bind().dialect.name
    return {"refreshed": [ACTIVITY_VIEW], "how": how, "database": dialect}


@task(
    name="mluvme.optimize_database",
    queue=QUEUE,
    schedule=SCHEDULES["mluvme.optimize_database"],
)
def optimize_database() -> dict[str, Any]:
    """``ANALYZE`` the example's tables so the planner knows their current sizes."""
    with session() as db:
        tables = analyze(db)
        dialect = db.get_bind().dialect.name
    return {"analyzed": tables, "database": dialect}
