"""What a running task can know about itself: its job id and which attempt this is."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobContext:
    job_id: str
    task: str
    attempt: int


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
