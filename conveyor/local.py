"""In-process submits: ``some_task.submit(...)`` from an app that shares the task code.

They go through a process-wide ``Submitter`` (the same validation and job
recording as the HTTP API), built on first use from ``get_settings()``. Tests
and inline mode install their own with ``install_submitter`` or, scoped,
``use_submitter``::

    from conveyor.local import use_submitter
    from conveyor.testing import InlineConveyor

    with use_submitter(InlineConveyor().submitter):
        job = send_welcome.submit(user_id=1)   # runs inline
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from conveyor.engine import create_app, import_task_modules
from conveyor.jobs import Job
from conveyor.settings import get_settings
from conveyor.store.factory import open_store
from conveyor.submit import SubmitRequest, Submitter
from conveyor.task import set_submit_function

__all__ = ["get_submitter", "install_submitter", "submit_task", "use_submitter"]

_lock = threading.Lock()
_installed: list[Submitter] = []


def _build() -> Submitter:
    settings = get_settings()
    import_task_modules(settings)
    return Submitter(settings, open_store(settings), create_app(settings))


def get_submitter() -> Submitter:
    """The process-wide Submitter (built from ``get_settings()`` on first use)."""
    with _lock:
        if not _installed:
            _installed.append(_build())
        return _installed[-1]


def install_submitter(submitter: Submitter | None) -> Submitter | None:
    """Use ``submitter`` for in-process submits from now on (None: build one on next use).
    Returns the one installed before."""
    with _lock:
        previous = _installed[-1] if _installed else None
        _installed.clear()
        if submitter is not None:
            _installed.append(submitter)
        return previous


@contextmanager
def use_submitter(submitter: Submitter) -> Iterator[Submitter]:
    """Install ``submitter`` for the duration of a ``with`` block."""
    previous = install_submitter(submitter)
    try:
        yield submitter
    finally:
        install_submitter(previous)


def submit_task(
    task: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    queue: str | None = None,
    priority: int | None = None,
    countdown: float | None = None,
    eta: datetime | None = None,
) -> Job:
    """Validate, record and enqueue ``task`` through the process-wide Submitter."""
    request = SubmitRequest(
        task=task,
        args=tuple(args),
        kwargs=dict(kwargs or {}),
        queue=queue,
        priority=priority,
        countdown=countdown,
        eta=eta,
    )
    return get_submitter().submit(request)


set_submit_function(submit_task)
