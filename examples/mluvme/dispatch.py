"""Submitting follow-up jobs from inside a running task (worker or inline)."""

from __future__ import annotations

from celery import current_app, current_task

from conveyor.hooks.workflow import submitter_for
from conveyor.submit import Submitter


def worker_submitter() -> Submitter:
    """The Submitter of the app running the current task (inline in tests, a broker in workers)."""
    app = current_task.app if current_task else current_app
    return submitter_for(app)
