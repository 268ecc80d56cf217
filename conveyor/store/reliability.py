"""Store operations for reliability: attempts, dead letters, idempotent creates, due jobs.

``ReliabilityStore`` is part of :class:`conveyor.store.base.JobStore`; the SQL
store implements it in ``sql_reliability.py``, the in-memory twin in
``memory_reliability.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from conveyor.jobs import Job, JobEvent, JobState
from conveyor.store.cursor import decode_key_cursor, encode_key_cursor


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a job: how it started, how it ended and why."""

    job_id: str
    attempt: int
    state: JobState
    reason: str | None = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    worker: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job that will not be tried again, with everything needed to run it again."""

    job_id: str
    task: str
    queue: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    priority: int | None
    retry: Mapping[str, Any] | None
    attempts: int
    error: str | None
    error_type: str | None
    traceback: str | None
    reason: str | None
    dead_at: datetime
    replayed_at: datetime | None = None
    replayed_job_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    task: str | None = None
    queue: str | None = None
    error_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: None = all; False = only entries not replayed yet
    replayed: bool | None = None
    #: why it died (``exhausted``, ``permanent``, ``time_limit``, ...)
    reason: str | None = None
    #: case-insensitive substring of the error message or error type
    text: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    items: list[DeadLetter] = field(default_factory=list)
    next_cursor: str | None = None


class KeyConflict(Exception):
    """Raised internally when an idempotency/unique key is taken but its job is gone."""


def encode_dl_cursor(entry: DeadLetter) -> str:
    return encode_key_cursor(entry.dead_at, entry.job_id)


def decode_dl_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of encode_dl_cursor; raises ValueError on anything malformed."""
    return decode_key_cursor(cursor)


def dead_letter_of(job: Job, event: JobEvent) -> DeadLetter:
    """The dead-letter entry for ``job`` after the DEAD ``event`` was applied."""
    return DeadLetter(
        job_id=job.id,
        task=job.task,
        queue=job.queue,
        args=tuple(job.args),
        kwargs=dict(job.kwargs),
        priority=job.priority,
        retry=dict(job.retry) if job.retry is not None else None,
        attempts=job.attempts,
        error=job.error,
        error_type=job.error_type,
        traceback=job.traceback,
        reason=event.reason,
        dead_at=event.at,
    )


def attempt_changes(event: JobEvent) -> dict[str, Any] | None:
    """The attempt-row columns ``event`` writes, or None when it is not about an attempt."""
    if not event.attempt or event.state in (JobState.SCHEDULED, JobState.QUEUED):
        return None
    if event.state is JobState.STARTED:
        return {"state": event.state.value, "started_at": event.at, "worker": event.worker}
    return {
        "state": event.state.value,
        "finished_at": event.at,
        "reason": event.reason,
        "error": event.error,
        "error_type": event.error_type,
        "traceback": event.traceback,
    }


def matches_dead_letter(entry: DeadLetter, flt: DeadLetterFilter) -> bool:
    checks = (
        flt.task is None or entry.task == flt.task,
        flt.queue is None or entry.queue == flt.queue,
        flt.error_type is None or entry.error_type == flt.error_type,
        flt.since is None or entry.dead_at >= flt.since,
        flt.until is None or entry.dead_at < flt.until,
        flt.replayed is None or (entry.replayed_job_id is not None) == flt.replayed,
        flt.reason is None or entry.reason == flt.reason,
        not flt.text or flt.text.lower() in f"{entry.error_type or ''} {entry.error or ''}".lower(),
    )
    return all(checks)


class ReliabilityStore(Protocol):
    # -- creating jobs once ------------------------------------------------------
    def create_job_once(self, job: Job) -> tuple[Job, bool]:
        """Insert ``job`` unless its idempotency_key or unique_key is taken by another job.

        Returns ``(job, True)`` when inserted, ``(existing, False)`` otherwise. Enforced by
        unique indexes, so concurrent callers get one job.
        """
        ...

    def expire_idempotency_key(self, key: str, created_before: datetime) -> bool:
        """Free ``key`` if the job holding it was created before ``created_before``."""
        ...

    # -- attempts ----------------------------------------------------------------
    def list_attempts(self, job_ids: Sequence[str]) -> dict[str, list[Attempt]]: ...

    # -- delayed jobs ------------------------------------------------------------
    def claim_due_jobs(
        self, now: datetime, limit: int, *, due_by: datetime | None = None
    ) -> list[Job]:
        """Atomically move SCHEDULED jobs due by ``due_by`` (default: ``now``) to QUEUED at
        ``now``; each job is claimed by one caller."""
        ...

    def unclaim_job(self, job_id: str) -> bool:
        """Undo a claim whose dispatch failed (QUEUED → SCHEDULED)."""
        ...

    def next_due_at(self) -> datetime | None:
        """When the earliest SCHEDULED job is due (None when none is held)."""
        ...

    # -- dead letters ------------------------------------------------------------
    def get_dead_letter(self, job_id: str) -> DeadLetter | None: ...
    def list_dead_letters(
        self, flt: DeadLetterFilter, limit: int, cursor: str | None = None
    ) -> DeadLetterPage: ...
    def delete_dead_letter(self, job_id: str) -> bool: ...
    def mark_dead_letter_replayed(self, job_id: str, new_job_id: str, at: datetime) -> bool:
        """Claim the entry for one replay; False if it was already replayed (or is gone)."""
        ...

    def unmark_dead_letter_replayed(self, job_id: str) -> None: ...
    def trim_dead_letters(self, max_entries: int, dead_before: datetime) -> int:
        """Delete entries older than ``dead_before`` and all but the newest ``max_entries``."""
        ...
