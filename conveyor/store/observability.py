"""Store operations behind metrics, live events and completion callbacks.

* **Job events**: every state change a store applies (and every job it creates) is
  appended to ``job_events`` in the same transaction, so a reader polling by id never
  misses one. The API prunes events older than ``CONVEYOR_EVENTS_RETENTION`` seconds.
* **Job counts**: jobs grouped by task, queue and state, computed at read time, so
  every number is true across all workers and survives restarts.
* **Duration histograms**: run time and queue wait, bucketed by the database.
* **Callback deliveries**: each attempt to POST a job's completion callback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from conveyor.jobs import Job, JobEvent, JobState

#: Seconds between two prunes of old job events by the API.
PRUNE_INTERVAL = 60.0

#: ``run``: finished_at - started_at of jobs that finished running (last attempt);
#: ``wait``: started_at - (scheduled_for or created_at) of first attempts.
DurationKind = Literal["run", "wait"]

#: States in which a job that has run ``attempts`` times is waiting for its next attempt.
WAITING_STATES = frozenset({JobState.RETRYING, JobState.QUEUED, JobState.SCHEDULED})
#: States counted as "executed" (the task ran to an outcome).
EXECUTED_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD})
FAILED_STATES = frozenset({JobState.FAILED, JobState.DEAD})


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One state change as kept in ``job_events``; ``id`` grows monotonically."""

    id: int
    job_id: str
    task: str
    queue: str
    state: JobState
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventFilter:
    task: str | None = None
    queue: str | None = None
    job_id: str | None = None

    def matches(self, event: StoredEvent) -> bool:
        return (
            (self.task is None or event.task == self.task)
            and (self.queue is None or event.queue == self.queue)
            and (self.job_id is None or event.job_id == self.job_id)
        )


@dataclass(frozen=True, slots=True)
class JobCount:
    """Jobs of one task in one queue in one state."""

    task: str
    queue: str
    state: JobState
    count: int
    retries: int
    last_activity: datetime | None


@dataclass(frozen=True, slots=True)
class Histogram:
    """Durations of one task in one queue: cumulative counts per upper bound, count and sum."""

    task: str
    queue: str
    buckets: tuple[int, ...]
    count: int
    total: float


@dataclass(frozen=True, slots=True)
class CallbackDelivery:
    job_id: str
    attempt: int
    url: str
    at: datetime
    ok: bool
    status_code: int | None = None
    error: str | None = None


def event_data(event: JobEvent) -> dict[str, Any]:
    """The ``data`` column of the event a state change leaves behind."""
    data: dict[str, Any] = {"attempt": event.attempt}
    if event.worker is not None:
        data["worker"] = event.worker
    if event.error_type is not None:
        data["error_type"] = event.error_type
        data["error"] = (event.error or "")[:500]
    if event.progress is not None:
        # a progress report: the stream shows it without a change of state
        data["progress"] = dict(event.progress)
    return data


def created_data(job: Job) -> dict[str, Any]:
    return {"attempt": job.attempts}


def retries_of(state: JobState, attempts: int) -> int:
    """How many retries a job has had: a waiting job has been retried once per run so far."""
    if state in WAITING_STATES:
        return attempts
    return max(attempts - 1, 0)


def duration_of(job: Job, kind: DurationKind) -> float | None:
    """The job's run time or queue wait in seconds, or None when it does not count."""
    if job.started_at is None:
        return None
    if kind == "run":
        if job.state not in EXECUTED_STATES or job.finished_at is None:
            return None
        return (job.finished_at - job.started_at).total_seconds()
    if job.attempts != 1:
        return None
    return (job.started_at - (job.scheduled_for or job.created_at)).total_seconds()


def bucket_counts(values: Sequence[float], bounds: Sequence[float]) -> tuple[int, ...]:
    return tuple(sum(1 for v in values if v <= bound) for bound in bounds)


class ObservabilityStore(Protocol):
    # -- job events --------------------------------------------------------------
    def list_job_events(self, after_id: int, flt: EventFilter, limit: int) -> list[StoredEvent]:
        """Events with ``id > after_id`` matching ``flt``, oldest first."""
        ...

    def last_job_event_id(self) -> int:
        """The newest event id (0 when there is none)."""
        ...

    def prune_job_events(self, before: datetime) -> int:
        """Delete events recorded before ``before``; returns how many."""
        ...

    # -- metrics -----------------------------------------------------------------
    def job_counts(self) -> list[JobCount]: ...

    def duration_histograms(
        self, kind: DurationKind, bounds: Sequence[float]
    ) -> list[Histogram]: ...

    # -- completion callbacks ----------------------------------------------------
    def add_callback_delivery(self, delivery: CallbackDelivery) -> None: ...
    def list_callback_deliveries(self, job_id: str) -> list[CallbackDelivery]: ...
