"""Completion callbacks: when a job with a ``callback_url`` ends, enqueue its delivery.

The POST itself runs as the internal task ``conveyor.deliver_callback`` (see
``conveyor.callbacks``), so it is retried with backoff by its RetryPolicy and
never holds up the job's worker slot.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import current_app, current_task

from conveyor.errors import ConveyorError
from conveyor.hooks.base import Hook, RunContext
from conveyor.jobs import JobState
from conveyor.settings import Settings
from conveyor.store.base import Failure, JobStore, StoreError
from conveyor.submit import SubmitRequest, Submitter

log = structlog.get_logger("conveyor.callbacks")

DELIVER_TASK = "conveyor.deliver_callback"


class CallbackHook(Hook):
    def __init__(self, store: JobStore, settings: Settings, *, inline: bool = False) -> None:
        self.store = store
        self.settings = settings
        self.inline = inline

    def _finished(self, ctx: RunContext) -> None:
        if ctx.task == DELIVER_TASK:
            return
        job = ctx.job(self.store)
        if job is None or not job.callback_url:
            return
        # the app running this task (hooks run while Celery's task stack holds it)
        app = current_task.app if current_task else current_app
        submitter = Submitter(self.settings, self.store, app, inline=self.inline)
        try:
            delivery = submitter.submit(SubmitRequest(DELIVER_TASK, kwargs={"job_id": job.id}))
        except (ConveyorError, StoreError) as exc:
            log.error("callback_not_enqueued", job_id=job.id, task=job.task, error=str(exc))
            return
        log.info("callback_enqueued", job_id=job.id, task=job.task, delivery_job_id=delivery.id)

    def on_success(self, ctx: RunContext, result: Any) -> None:
        self._finished(ctx)

    def on_failure(self, ctx: RunContext, failure: Failure, state: JobState) -> None:
        self._finished(ctx)
