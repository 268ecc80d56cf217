"""Submitting a job: validate, record the Job row, hand the message to the broker.

The HTTP API, the CLI, ``TaskFunction.submit`` and the scheduler all submit
through ``Submitter`` so every entry point validates and records the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from celery import Celery
from pydantic_core import to_jsonable_python

from conveyor.errors import (
    ArgumentsInvalid,
    BrokerUnavailable,
    ConveyorError,
    SubmitRefused,
    TaskNotFound,
)
from conveyor.in_thread import InThread
from conveyor.jobs import Job, JobState, new_job_id, utcnow
from conveyor.policies.delay import plan_delay
from conveyor.policies.outcome import OVERRIDABLE, effective_policy
from conveyor.policies.ratelimit import parse_rate
from conveyor.publishing import Published, broker_refused, publish_many
from conveyor.queues import broker_priority
from conveyor.routing import resolve_queue
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.task import TaskRegistry, registry
from conveyor.task_messages import Outgoing

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
    callback_url: str | None = None
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


def _headers(job: Job) -> dict[str, str] | None:
    return {WORKFLOW_HEADER: job.workflow_id} if job.workflow_id else None


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
        if req.callback_url and not self.settings.webhook_secret:
            raise SubmitRefused(
                "callback_url needs a signing secret: set CONVEYOR_WEBHOOK_SECRET "
                "(conveyor never sends unsigned callbacks)",
                field="callback_url",
            )
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
            callback_url=req.callback_url or None,
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
        """Publish a job just recorded, as a batch of one (conveyor.publishing: on Redis
        the message conveyor builds, one LPUSH; elsewhere ``send_task`` with its retries);
        a job the broker did not take is deleted and refused."""
        outcome = self.publish_many([job])
        refused = self._refusal(outcome, "nothing was enqueued")
        if refused is not None:
            log.warning("job_refused", job_id=job.id, task=job.task, reason="broker_unavailable")
            raise refused from outcome.error
        log.info("job_submitted", job_id=job.id, task=job.task, queue=job.queue, attempt=0)

    def _refusal(self, outcome: Published, what: str) -> BrokerUnavailable | None:
        """None when every job was sent. Otherwise the unsent jobs' rows are deleted and
        the error to answer them with is returned; a bug (not the broker) is raised, with
        nothing unsent left behind."""
        if not outcome.unsent:
            return None
        for job in outcome.unsent:
            self.store.delete_job(job.id)
        if outcome.error is not None and not broker_refused(outcome):
            raise outcome.error
        return BrokerUnavailable(f"broker unavailable, {what}: {outcome.error}")

    def dispatch(
        self, job: Job, producer: Any = None, *, retries: int = 0, declared: bool = False
    ) -> None:
        """Publish ``job`` to the broker under its own id (on ``producer`` if given).

        ``retries`` is the number of attempts already made (the worker runs attempt
        ``retries + 1``); only running a retrying job early sets it. ``declared``: the
        caller has declared the job's queue on ``producer`` already (bulk publishing).
        """
        options: dict[str, Any] = {"declare": []} if declared else {}
        out = self.outgoing(job, retries=retries)
        self.app.send_task(
            out.task,
            args=out.args,
            kwargs=out.kwargs,
            task_id=out.id,
            queue=out.queue,
            priority=out.priority,
            eta=out.eta,
            retry=True,
            retry_policy=_PUBLISH_RETRY,
            producer=producer,
            headers=out.headers,
            retries=out.retries,
            # conveyor keeps results in its job store: no result-backend watch per job
            ignore_result=True,
            **options,
        )

    def outgoing(self, job: Job, *, retries: int = 0) -> Outgoing:
        """The message ``job`` is published as (by ``send_task`` or conveyor.task_messages)."""
        due = job.scheduled_for
        return Outgoing(
            task=job.task,
            id=job.id,
            args=list(job.args),
            kwargs=dict(job.kwargs),
            queue=job.queue,
            priority=broker_priority(self.settings, job.priority),
            eta=due if due is not None and due > utcnow() else None,
            headers=_headers(job),
            retries=retries,
        )

    def _run_inline(self, job: Job) -> Job:
        log.info(
            "job_submitted", job_id=job.id, task=job.task, queue=job.queue, attempt=0, inline=True
        )
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
        # jobs with an idempotency/unique key or a held delay take the one-by-one path
        # (deduplication by unique index, SCHEDULED rows); the rest are written in bulk
        single: dict[str, Job | ConveyorError] = {
            job.id: self._submit_single(job) for job in accepted if not _bulk_ready(job)
        }
        bulk = [job for job in accepted if _bulk_ready(job)]
        if self.inline or not bulk:
            self.store.create_jobs(bulk)
            done: dict[str, Job | ConveyorError] = {j.id: self._run_inline(j) for j in bulk}
        else:
            # the rows are written in another thread while the messages are built; none
            # is sent before the rows are committed (publishing.publish_many's ``ready``)
            written = InThread(self.store.create_jobs, bulk)
            done = dict(self._publish_all(bulk, ready=written.result))
        done.update(single)
        return [done.get(o.id, o) if isinstance(o, Job) else o for o in outcomes]

    def _submit_single(self, job: Job) -> Job | ConveyorError:
        try:
            return self.submit_built(job)[0]
        except BrokerUnavailable as exc:
            return exc

    def publish_many(
        self, jobs: Sequence[Job], ready: Callable[[], None] | None = None
    ) -> Published:
        """Publish jobs recorded in the store (or, with ``ready``, once it returns),
        pipelined where the broker allows (see conveyor.publishing); returns which were
        sent and which were not."""
        return publish_many(self.app, jobs, self._send, describe=self.outgoing, ready=ready)

    def _send(self, job: Job, producer: Any) -> None:
        self.dispatch(job, producer=producer, declared=True)

    def _publish_all(
        self, jobs: Sequence[Job], ready: Callable[[], None] | None = None
    ) -> dict[str, ConveyorError]:
        """Publish ``jobs`` in bulk; the ones that could not be sent are deleted."""
        outcome = self.publish_many(jobs, ready)
        refused = self._refusal(outcome, "not enqueued")
        if refused is not None:
            log.warning("jobs_refused", count=len(outcome.unsent), reason="broker_unavailable")
            return {job.id: refused for job in outcome.unsent}
        log.info("jobs_submitted", count=len(outcome.sent))
        return {}


def _bulk_ready(job: Job) -> bool:
    """Whether ``job`` can be inserted in bulk: nothing to deduplicate, nothing held."""
    return job.idempotency_key is None and job.unique_key is None and job.state is JobState.QUEUED
