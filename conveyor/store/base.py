"""The JobStore protocol: a small seam with a SQL implementation and an in-memory twin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from conveyor.jobs import Job, JobEvent, JobState, utcnow
from conveyor.store.cursor import decode_key_cursor, encode_key_cursor
from conveyor.store.dashboard import DashboardStore
from conveyor.store.flow import FlowStore
from conveyor.store.observability import ObservabilityStore
from conveyor.store.prune import JobPruning
from conveyor.store.reliability import ReliabilityStore
from conveyor.store.schedules import ScheduleStore
from conveyor.store.workflows import WorkflowStore


class StoreError(Exception):
    """The store could not do what was asked (unreachable, not migrated, ...)."""


class DuplicateJob(StoreError):
    """A job with this id already exists."""


@dataclass(frozen=True, slots=True)
class JobFilter:
    state: JobState | None = None
    task: str | None = None
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class JobPage:
    items: list[Job]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    key_hash: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None = None
    prefix: str = ""


def encode_cursor(job: Job) -> str:
    return encode_key_cursor(job.created_at, job.id)


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of encode_cursor; raises ValueError on anything malformed."""
    return decode_key_cursor(cursor)


@dataclass(frozen=True, slots=True)
class Failure:
    """What went wrong in one attempt."""

    error: str
    error_type: str
    traceback: str | None = None
    at: datetime = field(default_factory=utcnow)
    #: why the attempt ended (``time_limit``, ``exhausted``, ``permanent``, ...)
    reason: str | None = None


@runtime_checkable
class JobStore(
    ReliabilityStore,
    FlowStore,
    JobPruning,
    DashboardStore,
    ObservabilityStore,
    ScheduleStore,
    WorkflowStore,
    Protocol,
):
    """Named operations on jobs and API keys. Nobody outside the store builds queries."""

    # -- lifecycle ---------------------------------------------------------------
    def migrate(self) -> None: ...
    def is_migrated(self) -> bool: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...

    # -- jobs --------------------------------------------------------------------
    def create_job(self, job: Job) -> Job: ...
    def delete_job(self, job_id: str) -> None: ...
    def get_job(self, job_id: str) -> Job | None: ...
    def list_jobs(self, flt: JobFilter, limit: int, cursor: str | None = None) -> JobPage: ...

    # one method per transition; each returns False when the transition is refused
    def mark_queued(self, job_id: str, at: datetime | None = None) -> bool: ...
    def mark_started(
        self, job_id: str, attempt: int, worker: str | None, at: datetime | None = None
    ) -> bool: ...
    def mark_succeeded(
        self, job_id: str, attempt: int, result: object, at: datetime | None = None
    ) -> bool: ...
    def mark_retrying(self, job_id: str, attempt: int, failure: Failure) -> bool: ...
    def mark_failed(self, job_id: str, attempt: int, failure: Failure) -> bool: ...
    def mark_dead(self, job_id: str, attempt: int, failure: Failure) -> bool: ...
    def mark_cancelled(self, job_id: str, at: datetime | None = None) -> bool: ...

    def apply_events(self, events: Sequence[JobEvent]) -> int:
        """Apply a batch of worker events in one transaction; returns how many took effect."""
        ...

    # -- API keys ----------------------------------------------------------------
    def add_api_key(self, key: ApiKey) -> None: ...
    def find_api_key(self, key_hash: str) -> ApiKey | None: ...
    def list_api_keys(self) -> list[ApiKey]: ...
    def revoke_api_key(self, key_id: str, at: datetime) -> bool: ...


class TransitionMethods:
    """The per-transition methods of JobStore, each one event through ``apply_events``."""

    def apply_events(self, events: Sequence[JobEvent]) -> int:
        raise NotImplementedError

    def _one(self, event: JobEvent) -> bool:
        return self.apply_events([event]) == 1

    def mark_queued(self, job_id: str, at: datetime | None = None) -> bool:
        return self._one(JobEvent(job_id, JobState.QUEUED, at or utcnow()))

    def mark_started(
        self, job_id: str, attempt: int, worker: str | None, at: datetime | None = None
    ) -> bool:
        return self._one(
            JobEvent(job_id, JobState.STARTED, at or utcnow(), attempt=attempt, worker=worker)
        )

    def mark_succeeded(
        self, job_id: str, attempt: int, result: object, at: datetime | None = None
    ) -> bool:
        event = JobEvent(job_id, JobState.SUCCEEDED, at or utcnow(), attempt=attempt, result=result)
        return self._one(event)

    def _failure_event(
        self, job_id: str, state: JobState, attempt: int, failure: Failure
    ) -> JobEvent:
        return JobEvent(
            job_id,
            state,
            failure.at,
            attempt=attempt,
            error=failure.error,
            error_type=failure.error_type,
            traceback=failure.traceback,
            reason=failure.reason,
        )

    def mark_retrying(self, job_id: str, attempt: int, failure: Failure) -> bool:
        return self._one(self._failure_event(job_id, JobState.RETRYING, attempt, failure))

    def mark_failed(self, job_id: str, attempt: int, failure: Failure) -> bool:
        return self._one(self._failure_event(job_id, JobState.FAILED, attempt, failure))

    def mark_dead(self, job_id: str, attempt: int, failure: Failure) -> bool:
        return self._one(self._failure_event(job_id, JobState.DEAD, attempt, failure))

    def mark_cancelled(self, job_id: str, at: datetime | None = None) -> bool:
        return self._one(JobEvent(job_id, JobState.CANCELLED, at or utcnow()))
