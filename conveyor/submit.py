"""Submitting a job: validate, record the Job row, hand the message to the broker.

The HTTP API, the CLI, ``TaskFunction.submit`` and the scheduler all submit
through ``Submitter`` so every entry point validates and records the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError
from pydantic_core import to_jsonable_python

from conveyor.errors import BrokerUnavailable, SubmitRefused
from conveyor.jobs import Job, JobState, new_job_id, utcnow
from conveyor.policies.delay import plan_delay
from conveyor.policies.outcome import OVERRIDABLE, effective_policy
from conveyor.policies.ratelimit import parse_rate
from conveyor.queues import broker_priority
from conveyor.routing import resolve_queue
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.task import TaskRegistry, registry

log = structlog.get_logger("conveyor.submit")

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
    #: per-submit retry override: ``{"max_retries", "base_delay", "max_delay"}``
    retry: Mapping[str, Any] | None = None
    idempotency_key: str | None = None
    #: the dead job this submit replays
    replay_of: str | None = None
    #: per-submit rate limit (``"5/s"``) replacing the task's, see policies.ratelimit
    rate_limit: str | None = None


def _checked_retry(retry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The per-submit retry override, refused when it is not a valid policy change."""
    if retry is None:
        return None
    unknown = sorted(set(retry) - set(OVERRIDABLE))
    if unknown:
        raise SubmitRefused(f"unknown retry field(s) {', '.join(unknown)}", field="retry")
    values = {key: value for key, value in retry.items() if value is not None}
    try:
        effective_policy(None, values)
    except (TypeError, ValueError) as exc:
        raise SubmitRefused(f"invalid retry override: {exc}", field="retry") from None
    return values


def _checked_rate(text: str | None) -> str | None:
    """The per-submit rate limit in its canonical spelling, refused when malformed."""
    if text is None:
        return None
    try:
        return str(parse_rate(text))
    except ValueError as exc:
        raise SubmitRefused(str(exc), field="rate_limit") from None


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
        values = spec.validate(req.args, req.kwargs)
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
        plan = plan_delay(
            now,
            req.countdown,
            req.eta,
            threshold=self.settings.delay_threshold,
            horizon=self.settings.delay_horizon,
        )
        held = plan.hold and not self.inline
        return Job(
            id=new_job_id(),
            task=spec.name,
            queue=queue,
            state=JobState.SCHEDULED if held else JobState.QUEUED,
            args=tuple(to_jsonable_python(list(req.args))),
            kwargs=to_jsonable_python(dict(req.kwargs)),
            priority=priority,
            created_at=now,
            updated_at=now,
            scheduled_for=plan.due,
            retry=_checked_retry(req.retry),
            idempotency_key=req.idempotency_key,
            unique_key=spec.unique_key(values),
            replay_of=req.replay_of,
            rate_limit=_checked_rate(req.rate_limit),
        )

    def submit(self, req: SubmitRequest) -> Job:
        return self.submit_once(req)[0]

    def submit_once(self, req: SubmitRequest) -> tuple[Job, bool]:
        """Submit ``req``; ``(job, False)`` when its idempotency or unique key found a job."""
        return self.submit_built(self.build(req))

    def submit_built(self, job: Job) -> tuple[Job, bool]:
        """Record and enqueue a job made by ``build`` (see ``submit_once``)."""
        if job.idempotency_key is not None:
            ttl = timedelta(seconds=self.settings.idempotency_ttl)
            self.store.expire_idempotency_key(job.idempotency_key, job.created_at - ttl)
        stored, created = self.store.create_job_once(job)
        if not created:
            log.info("job_deduplicated", job_id=stored.id, task=stored.task, state=stored.state)
            return stored, False
        if self.inline:
            return self._run_inline(stored), True
        if stored.state is JobState.SCHEDULED:
            log.info("job_scheduled", job_id=job.id, task=job.task, due=job.scheduled_for)
            return stored, True
        self._publish_new(stored)
        return stored, True

    def _publish_new(self, job: Job) -> None:
        try:
            self.dispatch(job)
        except (KombuOperationalError, OSError) as exc:
            self.store.delete_job(job.id)
            log.warning("job_refused", job_id=job.id, task=job.task, reason="broker_unavailable")
            raise BrokerUnavailable(f"broker unavailable, nothing was enqueued: {exc}") from exc
        log.info("job_submitted", job_id=job.id, task=job.task, queue=job.queue)

    def dispatch(self, job: Job) -> None:
        """Publish ``job`` to the broker under its own id."""
        self.app.send_task(
            job.task,
            args=list(job.args),
            kwargs=dict(job.kwargs),
            task_id=job.id,
            queue=job.queue,
            priority=broker_priority(self.settings, job.priority),
            eta=job.scheduled_for if job.scheduled_for and job.scheduled_for > utcnow() else None,
            retry=True,
            retry_policy=_PUBLISH_RETRY,
        )

    def _run_inline(self, job: Job) -> Job:
        log.info("job_submitted", job_id=job.id, task=job.task, queue=job.queue, inline=True)
        self.app.tasks[job.task].apply(args=list(job.args), kwargs=dict(job.kwargs), task_id=job.id)
        current = self.store.get_job(job.id)
        return current if current is not None else job
