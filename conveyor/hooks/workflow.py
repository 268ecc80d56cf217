"""Advance a workflow when one of its step jobs reaches a final state.

Runs in the worker after the record hook: it first flushes the recorder so the
store holds this job's final state, then lets ``conveyor.workflows.advance``
submit whatever may start now (through a Submitter bound to the worker's own
app and store; the worker never imports the API).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, current_task

from conveyor.hooks.base import Hook, RunContext
from conveyor.jobs import JobState
from conveyor.recorder import Recorder
from conveyor.store.base import Failure
from conveyor.submit import Submitter
from conveyor.workflows import advance


def attach_submitter(app: Celery, submitter: Submitter) -> None:
    """Make ``submitter`` the one the workflow hook uses in this process for ``app``."""
    app.conveyor_submitter = (os.getpid(), submitter)


def submitter_for(app: Celery) -> Submitter:
    """This process's Submitter for ``app``: attached, or built from its runtime."""
    attached = getattr(app, "conveyor_submitter", None)
    if attached is not None and attached[0] == os.getpid():
        submitter: Submitter = attached[1]
        return submitter
    runtime: Any = app.conveyor_runtime  # installed by conveyor.runtime before any hook runs
    submitter = Submitter(runtime.settings, runtime.store, app)
    attach_submitter(app, submitter)
    return submitter


class WorkflowHook(Hook):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def _advance(self, ctx: RunContext) -> None:
        if not ctx.workflow_id:
            return
        self.recorder.flush()
        advance(submitter_for(current_task.app), ctx.workflow_id)

    def on_success(self, ctx: RunContext, result: Any) -> None:
        self._advance(ctx)

    def on_failure(self, ctx: RunContext, failure: Failure, state: JobState) -> None:
        self._advance(ctx)
