"""What a running task can know about itself: its job id and which attempt this is."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from conveyor.jobs import JobEvent


@dataclass(frozen=True, slots=True)
class JobContext:
    job_id: str
    task: str
    attempt: int
    #: where progress reports go (the worker's recorder); None = nowhere
    report: Callable[[JobEvent], None] | None = None


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "conveyor_job", default=None
)


def current_job() -> JobContext | None:
    """The job this code runs for, or None outside a task."""
    return _current.get()


def current_job_id() -> str | None:
    job = _current.get()
    return job.job_id if job else None


@contextmanager
def running(job: JobContext) -> Iterator[JobContext]:
    token = _current.set(job)
    try:
        yield job
    finally:
        _current.reset(token)


def progress(done: int, total: int | None = None, message: str | None = None) -> None:
    """Report how far the running job is, e.g. ``progress(40, 100, "rows imported")``.

    Stored on the job (``Job.progress``: done, total, message, updated_at) through the
    worker's batched recorder, so it never blocks the task; it does not change the job's
    state. Outside a task it does nothing.
    """
    job = _current.get()
    if job is None or job.report is None:
        return
    job.report(JobEvent.progress_report(job.job_id, done, total, message))
