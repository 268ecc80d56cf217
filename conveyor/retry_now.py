"""Running a waiting job now: a SCHEDULED job before its time, a RETRYING one before its delay.

The job moves to QUEUED first (a conditional update, so a job that starts or is
released at the same moment is not sent twice) and is then published without a
delay. A RETRYING job's delayed message is still held by a worker; it carries the
same attempt number as the one sent now, and the worker's store gate skips it once
that attempt has run (see :func:`conveyor.hooks.gate.is_stale`).
"""

from __future__ import annotations

import structlog
from kombu.exceptions import OperationalError as KombuOperationalError

from conveyor.errors import BrokerUnavailable
from conveyor.jobs import Job, JobState, utcnow
from conveyor.store.base import JobStore
from conveyor.submit import Submitter

log = structlog.get_logger("conveyor.retry_now")

#: States a job can be run early from.
WAITING = frozenset({JobState.SCHEDULED, JobState.RETRYING})


class RetryNowError(Exception):
    def __init__(self, code: str, message: str, job: Job | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.job = code, message, job


def can_retry_now(job: Job) -> bool:
    return job.state in WAITING


def retry_now(store: JobStore, submitter: Submitter, job_id: str) -> Job:
    """Publish the waiting job ``job_id`` now; raises RetryNowError or BrokerUnavailable.

    Codes: ``job_not_found``, ``job_not_waiting`` (not SCHEDULED/RETRYING, or it
    changed state meanwhile).
    """
    job = store.get_job(job_id)
    if job is None:
        raise RetryNowError("job_not_found", f"no job {job_id!r}")
    if not can_retry_now(job):
        raise RetryNowError(
            "job_not_waiting",
            f"only a SCHEDULED or RETRYING job can run now; this one is {job.state.value}",
            job,
        )
    if not store.mark_queued(job.id, utcnow()):
        raise RetryNowError("job_not_waiting", "the job changed state meanwhile; reload it", job)
    try:
        _publish(submitter, job)
    except (KombuOperationalError, OSError) as exc:
        if job.state is JobState.SCHEDULED:
            store.unclaim_job(job.id)
        raise BrokerUnavailable(f"broker unavailable, the job still waits: {exc}") from exc
    log.info("job_run_now", job_id=job.id, task=job.task, was=job.state.value, attempt=job.attempts)
    current = store.get_job(job.id)
    return current if current is not None else job


def _publish(submitter: Submitter, job: Job) -> None:
    # a retrying job's next attempt carries the attempt number its delayed message carries
    retries = job.attempts if job.state is JobState.RETRYING else 0
    submitter.dispatch(job.evolve(scheduled_for=None), retries=retries)
