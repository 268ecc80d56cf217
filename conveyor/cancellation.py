"""Cancelling a job: recorded in the store first, so no worker restart can forget it."""

from __future__ import annotations

import structlog
from celery import Celery

from conveyor.jobs import Job, JobEvent, JobState, utcnow
from conveyor.policies.cancel import CancelAction, decide_cancel
from conveyor.store.base import JobStore

log = structlog.get_logger("conveyor.cancel")

_TRIES = 5


class CancelError(Exception):
    def __init__(self, code: str, message: str, job: Job | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.job = code, message, job


def cancel_job(store: JobStore, app: Celery, job_id: str, *, terminate: bool = False) -> Job:
    """Cancel ``job_id``; raises CancelError (``job_not_found``, ``job_finished``, ``job_running``).

    The state change is a conditional update, so a job that starts (or finishes)
    at the same moment is re-examined instead of being cancelled blindly.
    """
    for _ in range(_TRIES):
        job = store.get_job(job_id)
        if job is None:
            raise CancelError("job_not_found", f"no job {job_id!r}")
        decision = decide_cancel(job.state, terminate)
        if decision.action is CancelAction.REFUSE:
            raise CancelError(decision.code, decision.message, job)
        event = JobEvent(job_id, JobState.CANCELLED, utcnow(), reason="cancelled")
        if decision.action is CancelAction.TERMINATE:
            event = JobEvent(
                job_id, JobState.CANCELLED, event.at, attempt=job.attempts, reason="terminated"
            )
        if store.apply_events([event]) == 1:
            if decision.action is CancelAction.TERMINATE:
                app.control.revoke(job_id, terminate=True, signal="SIGTERM")
            log.info("job_cancelled", job_id=job_id, task=job.task, action=decision.action.value)
            current = store.get_job(job_id)
            return current if current is not None else job
    raise CancelError("job_busy", f"job {job_id!r} kept changing state; try again", None)
