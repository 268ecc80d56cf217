"""Submitting a job: validate, record the Job row, hand the message to the broker.

The HTTP API, the CLI, ``TaskFunction.submit`` and the scheduler all submit
through ``Submitter`` so every entry point validates and records the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError
from pydantic_core import to_jsonable_python

from conveyor.errors import (
    ArgumentsInvalid,
    BrokerUnavailable,
    ConveyorError,
    SubmitRefused,
    TaskNotFound,
)
from conveyor.jobs import Job, JobState, new_job_id, utcnow
from conveyor.routing import resolve_queue
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.task import TaskRegistry, registry

log = structlog.get_logger("conveyor.submit")

#: message header naming the workflow a step job belongs to
WORKFLOW_HEADER = "conveyor_workflow"

_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    task: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    countdown: float | None = None
    eta: datetime | None = None


def _due_time(req: SubmitRequest, now: datetime) -> datetime | None:
    if req.countdown is not None and req.eta is not None:
        raise SubmitRefused("give either countdown or eta, not both", field="countdown")
    if req.countdown is not None:
        if req.countdown < 0:
            raise SubmitRefused("countdown must be >= 0 seconds", field="countdown")
        return now + timedelta(seconds=req.countdown) if req.countdown > 0 else None
    if req.eta is not None:
        eta = req.eta if req.eta.tzinfo else req.eta.replace(tzinfo=UTC)
        return eta if eta > now else None  # an eta in the past runs now
    return None


def _headers(job: Job) -> dict[str, str] | None:
    return {WORKFLOW_HEADER: job.workflow_id} if job.workflow_id else None


class Submitter:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        app: Celery,
        tasks: TaskRegistry = registry,
        *,
        inline: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.app = app
        self.tasks = tasks
        self.inline = inline

    def build(self, req: SubmitRequest) -> Job:
        """Validate ``req`` and build its Job (nothing is written). Raises on bad input."""
        spec = self.tasks.get(req.task)
        spec.validate(req.args, req.kwargs)
        queue = resolve_queue(spec, self.settings, req.queue)
        if queue not in self.settings.queues:
            raise SubmitRefused(
                f"unknown queue {queue!r}; configured queues: {', '.join(self.settings.queues)}",
                field="queue",
            )
        priority = req.priority if req.priority is not None else spec.priority
        if priority is not None and not 0 <= priority <= 9:
            raise SubmitRefused("priority must be between 0 and 9", field="priority")
        now = utcnow()
        return Job(
            id=new_job_id(),
            task=spec.name,
            queue=queue,
            state=JobState.QUEUED,
            args=tuple(to_jsonable_python(list(req.args))),
            kwargs=to_jsonable_python(dict(req.kwargs)),
            priority=priority,
            created_at=now,
            updated_at=now,
            scheduled_for=_due_time(req, now),
        )

    def submit(self, req: SubmitRequest) -> Job:
        job = self.store.create_job(self.build(req))
        if self.inline:
            return self._run_inline(job)
        try:
            self.dispatch(job)
        except (KombuOperationalError, OSError) as exc:
            self.store.delete_job(job.id)
            log.warning("job_refused", job_id=job.id, task=job.task, reason="broker_unavailable")
            raise BrokerUnavailable(f"broker unavailable, nothing was enqueued: {exc}") from exc
        log.info("job_submitted", job_id=job.id, task=job.task, queue=job.queue)
        return job

    def dispatch(self, job: Job, producer: Any = None) -> None:
        """Publish ``job`` to the broker under its own id (on ``producer`` if given)."""
        self.app.send_task(
            job.task,
            args=list(job.args),
            kwargs=dict(job.kwargs),
            task_id=job.id,
            queue=job.queue,
            priority=job.priority,
            eta=job.scheduled_for,
            retry=True,
            retry_policy=_PUBLISH_RETRY,
            producer=producer,
            headers=_headers(job),
        )

    def _run_inline(self, job: Job) -> Job:
        log.info("job_submitted", job_id=job.id, task=job.task, queue=job.queue, inline=True)
        self.app.tasks[job.task].apply(
            args=list(job.args), kwargs=dict(job.kwargs), task_id=job.id, headers=_headers(job)
        )
        current = self.store.get_job(job.id)
        return current if current is not None else job

    def enqueue(self, job: Job) -> Job:
        """Send a job already recorded in the store (or run it now, inline)."""
        if self.inline:
            return self._run_inline(job)
        self.dispatch(job)
        log.info("job_submitted", job_id=job.id, task=job.task, queue=job.queue)
        return job

    def submit_many(self, reqs: Sequence[SubmitRequest]) -> list[Job | ConveyorError]:
        """Submit many jobs: each validated on its own, the accepted ones written in one
        transaction and published over one broker connection. Returns, per request, its
        job or the error that refused it (``BrokerUnavailable`` if it could not be sent)."""
        outcomes: list[Job | ConveyorError] = []
        for req in reqs:
            try:
                outcomes.append(self.build(req))
            except (TaskNotFound, ArgumentsInvalid, SubmitRefused) as exc:
                outcomes.append(exc)
        accepted = [job for job in outcomes if isinstance(job, Job)]
        self.store.create_jobs(accepted)
        if self.inline:
            done = {job.id: self._run_inline(job) for job in accepted}
            return [done[o.id] if isinstance(o, Job) else o for o in outcomes]
        unsent = self._publish_all(accepted)
        return [unsent.get(o.id, o) if isinstance(o, Job) else o for o in outcomes]

    def _publish_all(self, jobs: Sequence[Job]) -> dict[str, ConveyorError]:
        """Publish ``jobs`` on one producer; the ones that could not be sent are deleted."""
        sent = 0
        try:
            with self.app.producer_or_acquire() as producer:
                for job in jobs:
                    self.dispatch(job, producer=producer)
                    sent += 1
        except (KombuOperationalError, OSError) as exc:
            error = BrokerUnavailable(f"broker unavailable, not enqueued: {exc}")
            unsent = {job.id: error for job in jobs[sent:]}
            for job_id in unsent:
                self.store.delete_job(job_id)
            log.warning("jobs_refused", count=len(unsent), reason="broker_unavailable")
            return dict(unsent)
        log.info("jobs_submitted", count=sent)
        return {}
