"""Releasing SCHEDULED jobs to the broker when they are due.

``release_due`` claims due jobs atomically in the store (one conditional
``UPDATE … WHERE state = 'SCHEDULED'``, with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so two schedulers never release the same job, and publishes the
claimed jobs in bulk (pipelined on Redis, see conveyor.publishing). It keeps
claiming while claims come back full, so a burst of jobs due at the same second
is released in one pass. Jobs whose publish fails are put back to SCHEDULED and
tried on the next pass. With ``release_ahead`` set, jobs due within that many seconds
are released already, as Celery ETA tasks that the workers start on time.

The store-backed Beat scheduler (``conveyor scheduler``) calls ``release_due``
on the leader's every pass (at most ``scheduler_tick`` seconds apart, and
woken for the next due job, see ``JobStore.next_due_at``).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import structlog

from conveyor.jobs import utcnow
from conveyor.store.base import JobStore
from conveyor.submit import Submitter

log = structlog.get_logger("conveyor.delays")

#: jobs claimed per store round trip
CLAIM_LIMIT = 1000
#: longest one call keeps claiming (the scheduler's lease must be renewed meanwhile)
MAX_PASS_SECONDS = 5.0


def release_due(
    store: JobStore,
    submitter: Submitter,
    now: datetime | None = None,
    limit: int = CLAIM_LIMIT,
    *,
    max_seconds: float = MAX_PASS_SECONDS,
) -> int:
    """Publish every SCHEDULED job due at ``now``; returns how many were released.

    Claims ``limit`` at a time and goes on while a claim comes back full (for at most
    ``max_seconds``); stops early when the broker refuses a batch."""
    at = now or utcnow()
    # with release_ahead, jobs due a little later go now, as ETA tasks (dispatch sets the eta)
    due_by = at + timedelta(seconds=submitter.settings.release_ahead)
    deadline = time.monotonic() + max_seconds
    released = 0
    while True:
        claimed = store.claim_due_jobs(at, limit, due_by=due_by)
        if not claimed:
            return released
        outcome = submitter.publish_many(claimed)
        released += len(outcome.sent)
        for job in outcome.unsent:
            store.unclaim_job(job.id)
        if outcome.unsent:
            log.warning("job_release_failed", count=len(outcome.unsent), error=str(outcome.error))
            return released
        log.info("jobs_released", count=len(outcome.sent), due=at)
        if len(claimed) < limit or time.monotonic() > deadline:
            return released
