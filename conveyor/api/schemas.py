"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from conveyor.jobs import Job, JobState
from conveyor.routing import resolve_queue
from conveyor.settings import Settings
from conveyor.submit import SubmitRequest
from conveyor.task import TaskSpec

#: Longest countdown accepted (10 years); beyond it a date cannot be computed sensibly.
MAX_COUNTDOWN_SECONDS = 10 * 365 * 24 * 3600


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

    def to_request(self) -> SubmitRequest:
        return SubmitRequest(
            task=self.task,
            args=tuple(self.args),
            kwargs=dict(self.kwargs),
            queue=self.queue,
            priority=self.priority,
            countdown=self.countdown,
            eta=self.eta,
        )


class JobOut(BaseModel):
    """A job as recorded in the job store."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")

    id: str
    task: str
    queue: str
    state: JobState
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int | None
    attempts: int
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
    progress: dict[str, Any] | None = Field(
        None, description="Last progress report: done, total, message, updated_at."
    )
    workflow_id: str | None = Field(None, description="The workflow this job is a step of.")

    @classmethod
    def from_job(cls, job: Job) -> JobOut:
        return cls.model_validate(job)


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
