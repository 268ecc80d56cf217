"""``fanout``: one job per item, submitted in batches, at a global rate, outside quiet hours.

``fanout(task, items, rate="1/2s")`` is the primitive (call it in a task, e.g.
a daily schedule, with any iterable — a generator paging through a database is
fine: items are read and submitted ``batch_size`` at a time). The ``fanout``
catalog task runs the same expansion on a worker for a list given in a submit;
``POST /api/v1/jobs/fanout`` expands in the API process.

"Send daily reminders to all active users, 2 s apart"::

    @task(name="reminders.daily")
    def send_daily_reminders() -> int:
        users = ({"user_id": u.id, "timezone": u.tz} for u in active_users())
        return fanout("reminders.send", users, rate="1/2s", quiet_hours="22:00-08:00").count
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from celery import current_app

from conveyor.fanout import DEFAULT_BATCH, FanoutResult, expand
from conveyor.policies.fanout import QuietHours
from conveyor.policies.ratelimit import Rate
from conveyor.runtime import runtime_for
from conveyor.submit import Submitter
from conveyor.task import TaskFunction, task

__all__ = ["FanoutResult", "fanout", "fanout_task"]


def _worker_submitter() -> Submitter:
    runtime = runtime_for(current_app)
    return Submitter(runtime.settings, runtime.store, current_app)


def fanout(
    task_name: str | TaskFunction[Any, Any],
    items: Iterable[Mapping[str, Any]],
    *,
    rate: str | Rate | None = None,
    quiet_hours: str | QuietHours | None = None,
    queue: str | None = None,
    priority: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    submitter: Submitter | None = None,
) -> FanoutResult:
    """Submit one ``task_name`` job per item (its keyword arguments), ``rate`` apart.

    Each job is due at ``now + i * rate.interval`` (moved past ``quiet_hours`` in
    the item's ``timezone``) and carries ``rate`` as its rate limit, so the jobs
    never start faster than ``rate`` across the cluster. Inside a worker the
    worker's store is used; elsewhere pass a ``submitter``.
    """
    name = task_name.name if isinstance(task_name, TaskFunction) else task_name
    return expand(
        submitter or _worker_submitter(),
        name,
        items,
        rate=rate,
        quiet_hours=quiet_hours,
        queue=queue,
        priority=priority,
        batch_size=batch_size,
    )


@task(name="fanout")
def fanout_task(
    task: str,
    items: list[dict[str, Any]],
    rate: str | None = None,
    quiet_hours: str | None = None,
    queue: str | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    """Submit one ``task`` job per item, ``rate`` apart, outside ``quiet_hours``."""
    result = fanout(task, items, rate=rate, quiet_hours=quiet_hours, queue=queue, priority=priority)
    return {
        "count": result.count,
        "first_due": result.first_due.isoformat() if result.first_due else None,
        "last_due": result.last_due.isoformat() if result.last_due else None,
    }
