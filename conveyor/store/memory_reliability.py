"""ReliabilityStore in memory (mixed into MemoryStore); behaves like the SQL version."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from conveyor.jobs import Job, JobEvent, JobState
from conveyor.store.base import DuplicateJob
from conveyor.store.reliability import (
    Attempt,
    DeadLetter,
    DeadLetterFilter,
    DeadLetterPage,
    attempt_changes,
    dead_letter_of,
    decode_dl_cursor,
    encode_dl_cursor,
    matches_dead_letter,
)


class MemoryReliabilityMixin:
    """Needs ``_lock`` and ``_jobs`` from MemoryStore."""

    _lock: threading.RLock
    _jobs: dict[str, Job]
    _attempts: dict[tuple[str, int], Attempt]
    _dead: dict[str, DeadLetter]

    def _init_reliability(self) -> None:
        self._attempts = {}
        self._dead = {}

    # -- creating jobs once ------------------------------------------------------
    def create_job_once(self, job: Job) -> tuple[Job, bool]:
        with self._lock:
            for other in self._jobs.values():
                same_key = job.idempotency_key is not None and (
                    other.idempotency_key == job.idempotency_key
                )
                same_unique = job.unique_key is not None and other.unique_key == job.unique_key
                if same_key or same_unique:
                    return other, False
            if job.id in self._jobs:
                raise DuplicateJob(job.id)
            self._jobs[job.id] = job
            return job, True

    def expire_idempotency_key(self, key: str, created_before: datetime) -> bool:
        with self._lock:
            for job in list(self._jobs.values()):
                if job.idempotency_key == key and job.created_at < created_before:
                    self._jobs[job.id] = job.evolve(idempotency_key=None)
                    return True
        return False

    # -- attempts and dead letters -----------------------------------------------
    def _on_event(self, event: JobEvent, applied: bool) -> None:
        """Called by ``apply_events`` for every event, under the store's lock."""
        changes = attempt_changes(event)
        if changes is not None:
            self._upsert_attempt(event, changes)
        job = self._jobs.get(event.job_id)
        if applied and event.state is JobState.DEAD and job is not None:
            self._dead.setdefault(job.id, dead_letter_of(job, event))

    def _upsert_attempt(self, event: JobEvent, changes: dict[str, Any]) -> None:
        key = (event.job_id, event.attempt)
        current = self._attempts.get(key)
        if current is not None and event.state is JobState.STARTED:
            return
        values: dict[str, Any] = dict(changes)
        values["state"] = JobState(values["state"])
        if current is None:
            self._attempts[key] = Attempt(job_id=event.job_id, attempt=event.attempt, **values)
        else:
            self._attempts[key] = dataclasses.replace(current, **values)

    def list_attempts(self, job_ids: Sequence[str]) -> dict[str, list[Attempt]]:
        out: dict[str, list[Attempt]] = {job_id: [] for job_id in job_ids}
        with self._lock:
            for (job_id, _), attempt in sorted(self._attempts.items()):
                if job_id in out:
                    out[job_id].append(attempt)
        return out

    # -- delayed jobs ------------------------------------------------------------
    def claim_due_jobs(
        self, now: datetime, limit: int, *, due_by: datetime | None = None
    ) -> list[Job]:
        cutoff = due_by or now
        with self._lock:
            due = [
                job
                for job in self._jobs.values()
                if job.state is JobState.SCHEDULED
                and job.scheduled_for is not None
                and job.scheduled_for <= cutoff
            ]
            due.sort(key=lambda j: (j.scheduled_for or now, j.id))
            claimed = [job.evolve(state=JobState.QUEUED, updated_at=now) for job in due[:limit]]
            for job in claimed:
                self._jobs[job.id] = job
            return claimed

    def next_due_at(self) -> datetime | None:
        with self._lock:
            due = [
                job.scheduled_for
                for job in self._jobs.values()
                if job.state is JobState.SCHEDULED and job.scheduled_for is not None
            ]
        return min(due, default=None)

    def unclaim_job(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state is not JobState.QUEUED:
                return False
            self._jobs[job_id] = job.evolve(state=JobState.SCHEDULED)
            return True

    # -- dead letters ------------------------------------------------------------
    def get_dead_letter(self, job_id: str) -> DeadLetter | None:
        with self._lock:
            return self._dead.get(job_id)

    def list_dead_letters(
        self, flt: DeadLetterFilter, limit: int, cursor: str | None = None
    ) -> DeadLetterPage:
        with self._lock:
            found = [e for e in self._dead.values() if matches_dead_letter(e, flt)]
        found.sort(key=lambda e: (e.dead_at, e.job_id), reverse=True)
        if cursor is not None:
            after = decode_dl_cursor(cursor)
            found = [e for e in found if (e.dead_at, e.job_id) < after]
        page = found[:limit]
        more = len(found) > limit
        return DeadLetterPage(page, encode_dl_cursor(page[-1]) if more and page else None)

    def delete_dead_letter(self, job_id: str) -> bool:
        with self._lock:
            return self._dead.pop(job_id, None) is not None

    def mark_dead_letter_replayed(self, job_id: str, new_job_id: str, at: datetime) -> bool:
        with self._lock:
            entry = self._dead.get(job_id)
            if entry is None or entry.replayed_job_id is not None:
                return False
            self._dead[job_id] = dataclasses.replace(
                entry, replayed_job_id=new_job_id, replayed_at=at
            )
            return True

    def unmark_dead_letter_replayed(self, job_id: str) -> None:
        with self._lock:
            entry = self._dead.get(job_id)
            if entry is not None:
                self._dead[job_id] = dataclasses.replace(
                    entry, replayed_job_id=None, replayed_at=None
                )

    def trim_dead_letters(self, max_entries: int, dead_before: datetime) -> int:
        with self._lock:
            entries = sorted(self._dead.values(), key=lambda e: (e.dead_at, e.job_id), reverse=True)
            doomed = [e for e in entries[max_entries:]]
            doomed += [e for e in entries[:max_entries] if e.dead_at < dead_before]
            for entry in doomed:
                del self._dead[entry.job_id]
            return len(doomed)
