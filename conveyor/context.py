"""What a running task can know about itself: its job id and which attempt this is."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
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


# -- progress ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Progress:
    """How far a running job is: ``done`` of ``total`` units (total None = unknown)."""

    done: int
    total: int | None = None
    message: str = ""


ProgressSink = Callable[[str, Progress], None]

_sink: contextvars.ContextVar[ProgressSink | None] = contextvars.ContextVar(
    "conveyor_progress_sink", default=None
)
_latest: dict[str, Progress] = {}
_latest_lock = threading.Lock()
_LATEST_CAP = 1000


def progress(done: int, total: int | None = None, message: str = "") -> Progress:
    """Report progress of the current job.

    The latest report per job is kept in this process (``latest_progress``) and
    handed to the sink installed with ``progress_sink`` (the worker wires one that
    records it on the job). Outside a job it is a no-op apart from the return value.
    """
    report = Progress(done=done, total=total, message=message)
    job = current_job()
    if job is None:
        return report
    with _latest_lock:
        if len(_latest) >= _LATEST_CAP and job.job_id not in _latest:
            _latest.pop(next(iter(_latest)))
        _latest[job.job_id] = report
    sink = _sink.get()
    if sink is not None:
        sink(job.job_id, report)
    return report


def latest_progress(job_id: str) -> Progress | None:
    """The last progress reported by ``job_id`` in this process, if any."""
    with _latest_lock:
        return _latest.get(job_id)


@contextmanager
def progress_sink(sink: ProgressSink) -> Iterator[ProgressSink]:
    """Send every ``progress()`` call made inside this block to ``sink(job_id, progress)``."""
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)
