"""Releasing SCHEDULED jobs to the broker when they are due.

``release_due`` claims due jobs atomically in the store (a conditional
``UPDATE … WHERE state = 'SCHEDULED'``, with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), so two schedulers never release the same job, and publishes each
claimed job. A job whose publish fails is put back to SCHEDULED and tried on the
next tick.

The store-backed Beat scheduler calls ``release_due`` on every tick; until it
runs in ``conveyor scheduler``, ``DelayReleaser`` (a small thread) does.
"""

from __future__ import annotations

import threading
from datetime import datetime

import structlog
from kombu.exceptions import OperationalError as KombuOperationalError

from conveyor.jobs import utcnow
from conveyor.store.base import JobStore, StoreError
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


class DelayReleaser:
    """Calls ``release_due`` every ``interval`` seconds on a daemon thread until stopped."""

    def __init__(self, store: JobStore, submitter: Submitter, interval: float = 1.0) -> None:
        self.store = store
        self.submitter = submitter
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conveyor-delays", daemon=True)

    def start(self) -> DelayReleaser:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def tick(self) -> int:
        try:
            return release_due(self.store, self.submitter)
        except StoreError as exc:
            log.warning("job_release_store_unavailable", error=str(exc))
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            released = self.tick()
            # more may be due right away when a full batch was released
            if released < 500:
                self._stop.wait(self.interval)
