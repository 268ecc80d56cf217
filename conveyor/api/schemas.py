"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from conveyor.jobs import Job, JobState
from conveyor.routing import resolve_queue
from conveyor.settings import Settings
from conveyor.store.observability import CallbackDelivery
from conveyor.store.reliability import Attempt
from conveyor.submit import SubmitRequest
from conveyor.task import TaskSpec

#: Longest countdown accepted (10 years); beyond it a date cannot be computed sensibly.
MAX_COUNTDOWN_SECONDS = 10 * 365 * 24 * 3600


class RetryOverride(BaseModel):
    """Per-submit changes to the task's retry policy (unset fields keep the task's values)."""

    model_config = ConfigDict(extra="forbid")

    max_retries: int | None = Field(None, ge=0, le=100, description="Retries after the first run.")
    base_delay: float | None = Field(
        None, ge=0, le=86400, allow_inf_nan=False, description="Delay before the first retry, s."
    )
    max_delay: float | None = Field(
        None, ge=0, le=86400, allow_inf_nan=False, description="Longest delay between retries, s."
    )


class AttemptOut(BaseModel):
    """One run of a job."""

    attempt: int
    state: JobState
    reason: str | None
    error: str | None
    error_type: str | None
    traceback: str | None
    worker: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_attempt(cls, attempt: Attempt) -> AttemptOut:
        return cls(
            attempt=attempt.attempt,
            state=attempt.state,
            reason=attempt.reason,
            error=attempt.error,
            error_type=attempt.error_type,
            traceback=attempt.traceback,
            worker=attempt.worker,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
        )


class SubmitBody(BaseModel):
    """A job to run: the task by name and its arguments, validated against its schema."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"task": "email.send", "kwargs": {"to": "a@example.com"}}],
        },
    )

    task: str = Field(min_length=1, max_length=200, description="Registered task name.")
    args: list[Any] = Field(default_factory=list, description="Positional arguments.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
    queue: str | None = Field(None, description="Override the task's queue.")
    priority: int | None = Field(None, ge=0, le=9, description="0 (lowest) to 9 (highest).")
    countdown: float | None = Field(
        None,
        ge=0,
        le=MAX_COUNTDOWN_SECONDS,
        allow_inf_nan=False,
        description="Run after this many seconds (give this or eta).",
    )
    eta: datetime | None = Field(
        None, description="Run at this time (ISO 8601; UTC if no offset). Past = now."
    )
    callback_url: AnyHttpUrl | None = Field(
        None,
        description="POST the job here (signed with `X-Conveyor-Signature`) when it reaches a "
        "final state. Needs CONVEYOR_WEBHOOK_SECRET on the server.",
    )
    retry: RetryOverride | None = Field(
        None, description="Override the task's retry policy for this job."
    )
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="A second submit with the same key (within idempotency_ttl) returns the "
        "first job with 200 and enqueues nothing.",
    )
    rate_limit: str | None = Field(
        None,
        max_length=64,
        description="Rate limit for this job instead of the task's, e.g. '5/s' or "
        "'10/m;burst=2'; held across all workers (see docs/flow-control.md).",
    )

    def to_request(self) -> SubmitRequest:
        return SubmitRequest(
            task=self.task,
            args=tuple(self.args),
            kwargs=dict(self.kwargs),
            queue=self.queue,
            priority=self.priority,
            countdown=self.countdown,
            eta=self.eta,
            callback_url=str(self.callback_url) if self.callback_url else None,
            retry=self.retry.model_dump(exclude_none=True) if self.retry else None,
            idempotency_key=self.idempotency_key,
            rate_limit=self.rate_limit,
        )


class CallbackOut(BaseModel):
    """One attempt to POST a job's completion callback."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int
    url: str
    at: datetime
    ok: bool
    status_code: int | None
    error: str | None


class JobOut(BaseModel):
    """A job as recorded in the job store, with every attempt."""

    model_config = ConfigDict(extra="forbid")

    id: str
    task: str
    queue: str
    state: JobState
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int | None
    attempts: list[AttemptOut] = Field(description="Every attempt, oldest first.")
    attempt_count: int = Field(description="The number of the latest attempt (0 = not started).")
    result: Any
    error: str | None
    error_type: str | None
    traceback: str | None
    worker: str | None
    created_at: datetime
    scheduled_for: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    callback_url: str | None = None
    callbacks: list[CallbackOut] = Field(
        default_factory=list, description="Each attempt to deliver the completion callback."
    )
    retry: dict[str, Any] | None = Field(description="The submit's retry override, if any.")
    idempotency_key: str | None
    replay_of: str | None = Field(description="The dead job this job replays.")
    progress: dict[str, Any] | None = Field(
        None, description="Last progress report: done, total, message, updated_at."
    )
    workflow_id: str | None = Field(None, description="The workflow this job is a step of.")
    rate_limit: str | None = Field(None, description="The submit's rate limit override, if any.")
    reason: str | None = Field(
        None,
        description="Why a RETRYING job waits: 'rate_limited' or 'concurrency_limited' (put "
        "back by flow control, no attempt used) or 'retry' (an attempt failed).",
    )

    @classmethod
    def from_job(
        cls,
        job: Job,
        attempts: Sequence[Attempt] = (),
        callbacks: Sequence[CallbackDelivery] = (),
    ) -> JobOut:
        values = {name: getattr(job, name) for name in _JOB_FIELDS}
        values["args"] = list(job.args)
        values["kwargs"] = dict(job.kwargs)
        values["retry"] = dict(job.retry) if job.retry is not None else None
        values["attempts"] = [AttemptOut.from_attempt(a) for a in attempts]
        values["attempt_count"] = job.attempts
        values["callbacks"] = [CallbackOut.model_validate(c) for c in callbacks]
        return cls.model_validate(values)


_JOB_FIELDS = (
    "id",
    "task",
    "queue",
    "state",
    "priority",
    "result",
    "error",
    "error_type",
    "traceback",
    "worker",
    "created_at",
    "scheduled_for",
    "started_at",
    "finished_at",
    "updated_at",
    "idempotency_key",
    "replay_of",
    "callback_url",
    "progress",
    "workflow_id",
    "rate_limit",
    "reason",
)


class JobList(BaseModel):
    """One page of jobs, newest first; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[JobOut]
    next_cursor: str | None


class TaskOut(BaseModel):
    """A registered task and the JSON schema its arguments are validated against."""

    name: str
    queue: str
    description: str
    priority: int | None
    parameters: dict[str, Any]
    is_async: bool

    @classmethod
    def from_spec(cls, spec: TaskSpec, settings: Settings) -> TaskOut:
        return cls(
            name=spec.name,
            queue=resolve_queue(spec, settings),
            description=spec.description,
            priority=spec.priority,
            parameters=spec.json_schema(),
            is_async=spec.is_async,
        )


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
