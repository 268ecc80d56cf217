"""The store is checked before every run: a cancelled or finished job never runs.

Celery's revoke list lives in worker memory and is forgotten on restart; the
job store is not. A message whose job is CANCELLED (or already finished, e.g. a
redelivered duplicate) is acknowledged without running the task.
"""

from __future__ import annotations

import structlog

from conveyor.gate import RUN, Gate
from conveyor.hooks.base import Hook, RunContext
from conveyor.jobs import JobState
from conveyor.store.base import JobStore, StoreError

log = structlog.get_logger("conveyor.worker")

#: how long a run waits when the store cannot be asked whether the job was cancelled
STORE_DOWN_DEFER = 5.0


def gate_for(state: JobState | None) -> Gate:
    """Pure decision: may a job in ``state`` (None = not in the store) run now?"""
    if state is None or not state.is_final:
        return RUN
    if state is JobState.CANCELLED:
        return Gate.skip("cancelled")
    return Gate.skip(f"already_{state.value.lower()}")


def is_stale(state: JobState, attempts: int, attempt: int) -> bool:
    """Whether a message for ``attempt`` is a duplicate of an attempt the job already made.

    Running a retrying job early (:mod:`conveyor.retry_now`) sends its next attempt
    while the delayed message for that attempt still waits in a worker; once the
    early run has happened, the delayed one is skipped. A STARTED job is never
    stale: that is a redelivery after a crash.
    """
    return state in (JobState.QUEUED, JobState.RETRYING) and 0 < attempt <= attempts


class StoreGateHook(Hook):
    def __init__(self, store: JobStore) -> None:
        self.store = store

    def before_run(self, ctx: RunContext) -> Gate:
        try:
            job = ctx.job(self.store)
        except StoreError as exc:
            log.warning("gate_store_unavailable", job_id=ctx.job_id, error=str(exc))
            return Gate.defer(STORE_DOWN_DEFER, "store_unavailable")
        if job is not None and is_stale(job.state, job.attempts, ctx.attempt):
            return Gate.skip("stale_attempt")
        return gate_for(job.state if job is not None else None)
