"""Releasing SCHEDULED jobs to the broker when they are due.

``release_due`` claims due jobs atomically in the store (a conditional
``UPDATE … WHERE state = 'SCHEDULED'``, with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so two schedulers never release the same job, and publishes each
claimed job. A job whose publish fails is put back to SCHEDULED and tried on the
next tick.

The store-backed Beat scheduler (``conveyor scheduler``) calls ``release_due``
on the leader's every pass (at most ``scheduler_tick`` seconds apart).
"""

from __future__ import annotations

from datetime import datetime

import structlog
from kombu.exceptions import OperationalError as KombuOperationalError

from conveyor.jobs import utcnow
from conveyor.store.base import JobStore
from conveyor.submit import Submitter

log = structlog.get_logger("conveyor.delays")


def release_due(
    store: JobStore, submitter: Submitter, now: datetime | None = None, limit: int = 500
) -> int:
    """Publish every SCHEDULED job due at ``now``; returns how many were released."""
    released = 0
    for job in store.claim_due_jobs(now or utcnow(), limit):
        try:
            submitter.dispatch(job)
        except (KombuOperationalError, OSError) as exc:
            store.unclaim_job(job.id)
            log.warning("job_release_failed", job_id=job.id, task=job.task, error=str(exc))
            continue
        released += 1
        log.info("job_released", job_id=job.id, task=job.task, due=job.scheduled_for)
    return released
