"""Jobs as immutable values: the state enum, the transition table, and the Job record."""

from __future__ import annotations

import dataclasses
import enum
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class JobState(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    STARTED = "STARTED"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    DEAD = "DEAD"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.DEAD, JobState.CANCELLED})
ACTIVE_STATES = frozenset(JobState) - FINAL_STATES

#: Which state may follow which. ``STARTED → STARTED`` is a redelivery after a
#: worker crash (late ack): the same attempt starts again on another process.
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    JobState.SCHEDULED: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    # QUEUED/RETRYING → RETRYING: flow control put the message back (rate limit, concurrency)
    JobState.QUEUED: frozenset({JobState.STARTED, JobState.CANCELLED, JobState.RETRYING}),
    JobState.STARTED: frozenset(
        {
            JobState.STARTED,
            JobState.SUCCEEDED,
            JobState.RETRYING,
            JobState.FAILED,
            JobState.DEAD,
            JobState.CANCELLED,
        }
    ),
    JobState.RETRYING: frozenset(
        {JobState.QUEUED, JobState.STARTED, JobState.CANCELLED, JobState.RETRYING}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.DEAD: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def sources_of(target: JobState) -> frozenset[JobState]:
    """States from which ``target`` may be entered."""
    return frozenset(src for src, targets in TRANSITIONS.items() if target in targets)


class InvalidTransition(Exception):
    def __init__(self, job_id: str, current: JobState, target: JobState) -> None:
        super().__init__(f"job {job_id} cannot go from {current} to {target}")
        self.job_id, self.current, self.target = job_id, current, target


def utcnow() -> datetime:
    return datetime.now(UTC)


#: the RFC 4122 variant in the 17th hex digit: its two high bits set to 10
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class _ReadyIds(threading.local):
    """Random UUIDs made 256 at a time per thread, from one ``os.urandom`` call: that
    call drops the GIL, and a thread building a batch that dropped it twice per job
    waited each time for the threads that took it meanwhile."""

    def __init__(self) -> None:
        self.ids: list[str] = []


_ready = _ReadyIds()


def _forget_ready() -> None:
    # a forked child must not hand out the ids its parent will hand out too
    _ready.ids = []


os.register_at_fork(after_in_child=_forget_ready)


def _fresh_ids(count: int) -> list[str]:
    digits = os.urandom(16 * count).hex()
    out = []
    for at in range(0, 32 * count, 32):
        h = digits[at : at + 32]
        # version 4 in the 13th hex digit, the variant in the 17th
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}")
    return out


def random_uuid() -> str:
    """A random (version 4) UUID in its canonical text form, as ``str(uuid.uuid4())``
    (the same OS randomness) in a fraction of the time: no UUID object, and one system
    call per 256 (a batch of 1,000 jobs makes two per job)."""
    ids = _ready.ids
    if not ids:
        ids.extend(_fresh_ids(256))
    return ids.pop()


def new_job_id() -> str:
    return random_uuid()


def json_ready_fields(value: Any) -> dict[str, Any]:
    """A dataclass instance's fields as JSON-ready values (datetimes as ISO strings)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if isinstance(item, datetime):
            item = item.isoformat()
        elif isinstance(item, tuple):
            item = list(item)
        elif isinstance(item, Mapping):
            item = dict(item)
        out[f.name] = item
    return out


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of work and everything known about it. Never mutated: use ``evolve``."""

    id: str
    task: str
    queue: str
    state: JobState
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    priority: int | None = None
    attempts: int = 0
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    worker: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    scheduled_for: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime = field(default_factory=utcnow)
    callback_url: str | None = None
    #: per-submit retry override: ``{"max_retries", "base_delay", "max_delay"}``
    retry: Mapping[str, Any] | None = None
    idempotency_key: str | None = None
    #: set while a ``@task(unique=True)`` job is active; cleared in a final state
    unique_key: str | None = None
    #: the dead job this one replays
    replay_of: str | None = None
    #: ``{"done", "total", "message", "updated_at"}`` as last reported by the task
    progress: Mapping[str, Any] | None = None
    #: the workflow this job is a step of
    workflow_id: str | None = None
    #: per-submit rate limit override (``"5/s"``), see conveyor.policies.ratelimit
    rate_limit: str | None = None
    #: why the job is waiting (``rate_limited``, ``concurrency_limited``, ``retry``); None otherwise
    reason: str | None = None

    def evolve(self, **changes: Any) -> Job:
        return dataclasses.replace(self, **changes)

    def can_become(self, target: JobState) -> bool:
        return target in TRANSITIONS[self.state]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        names = cls.__dataclass_fields__  # (a dict by field name: no list built per row)
        values = {k: v for k, v in row.items() if k in names}
        values["state"] = JobState(values["state"])
        values["args"] = tuple(values.get("args") or ())
        values["kwargs"] = dict(values.get("kwargs") or {})
        for key in ("created_at", "scheduled_for", "started_at", "finished_at", "updated_at"):
            value = values.get(key)
            if isinstance(value, datetime) and value.tzinfo is None:
                values[key] = value.replace(tzinfo=UTC)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (datetimes as ISO strings)."""
        return json_ready_fields(self)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """A state change observed by a worker (or the API), applied to the store in batches.

    ``attempt`` orders events of one job: an event from an older attempt than
    the one the store already knows about is ignored (0 = not tied to an
    attempt), so batches flushed late by another process never move a job back.
    """

    job_id: str
    state: JobState
    at: datetime = field(default_factory=utcnow)
    attempt: int = 0
    worker: str | None = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    #: why an attempt ended this way (``time_limit``, ``exhausted``, ``permanent``, ...)
    reason: str | None = None
    #: set on a progress report: the event then writes ``progress`` and never changes state
    progress: Mapping[str, Any] | None = None

    @classmethod
    def progress_report(
        cls, job_id: str, done: int, total: int | None, message: str | None
    ) -> JobEvent:
        at = utcnow()
        report = {"done": done, "total": total, "message": message, "updated_at": at.isoformat()}
        return cls(job_id, JobState.STARTED, at, progress=report)

    def changes(self) -> dict[str, Any]:
        """The column values this event writes (besides ``state`` and ``updated_at``)."""
        if self.state is JobState.RETRYING and not self.attempt:
            # flow control put the message back: no attempt ended, only the reason changes
            return {"reason": self.reason}
        if self.state in (JobState.RETRYING, JobState.STARTED):
            return {**self._changes(), "reason": self.reason}
        if self.state.is_final:
            # a final job no longer holds its task's unique slot
            return {**self._changes(), "unique_key": None}
        return self._changes()

    def _changes(self) -> dict[str, Any]:
        if self.state is JobState.STARTED:
            return {"started_at": self.at, "worker": self.worker, "attempts": self.attempt}
        if self.state is JobState.SUCCEEDED:
            return {
                "result": self.result,
                "finished_at": self.at,
                "error": None,
                "error_type": None,
                "traceback": None,
            }
        failure = {"error": self.error, "error_type": self.error_type, "traceback": self.traceback}
        if self.state is JobState.RETRYING:
            return failure
        if self.state in (JobState.FAILED, JobState.DEAD):
            return {**failure, "finished_at": self.at}
        if self.state is JobState.CANCELLED:
            return {"finished_at": self.at}
        return {}


def apply_event(job: Job, event: JobEvent) -> Job | None:
    """The job after ``event``, or None when the transition is not allowed (or stale)."""
    if event.progress is not None:
        if job.state.is_final:
            return None
        return job.evolve(progress=dict(event.progress), updated_at=event.at)
    stale = bool(event.attempt) and event.attempt < job.attempts
    if stale or not job.can_become(event.state):
        return None
    return job.evolve(state=event.state, updated_at=event.at, **event.changes())
