"""The in-memory JobStore twin, for unit tests and ``conveyor.testing``."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from datetime import datetime

from conveyor.jobs import Job, JobEvent, apply_event
from conveyor.store.base import (
    ApiKey,
    DuplicateJob,
    JobFilter,
    JobPage,
    TransitionMethods,
    decode_cursor,
    encode_cursor,
)
from conveyor.store.memory_dashboard import MemoryDashboardMixin
from conveyor.store.memory_flow import MemoryFlowMixin
from conveyor.store.memory_observability import MemoryObservability
from conveyor.store.memory_prune import MemoryPruning
from conveyor.store.memory_reliability import MemoryReliabilityMixin
from conveyor.store.memory_schedules import MemoryScheduleMixin
from conveyor.store.memory_workflows import MemoryWorkflowMixin


class MemoryStore(
    MemoryReliabilityMixin,
    MemoryFlowMixin,
    MemoryObservability,
    MemoryDashboardMixin,
    MemoryScheduleMixin,
    MemoryWorkflowMixin,
    TransitionMethods,
    MemoryPruning,
):
    """Thread-safe, process-local; behaves like the SQL store for every named operation."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._keys: dict[str, ApiKey] = {}
        self._init_observability()
        self._init_reliability()
        self._init_flow()

    def migrate(self) -> None:
        return None

    def is_migrated(self) -> bool:
        return True

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None

    def create_job(self, job: Job) -> Job:
        with self._lock:
            if job.id in self._jobs:
                raise DuplicateJob(job.id)
            self._jobs[job.id] = job
            self._append_event(job)
            return job

    def delete_job(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def get_job(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list_jobs(self, flt: JobFilter, limit: int, cursor: str | None = None) -> JobPage:
        with self._lock:
            jobs = [j for j in self._jobs.values() if _matches(j, flt)]
        jobs.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        if cursor is not None:
            after = decode_cursor(cursor)
            jobs = [j for j in jobs if (j.created_at, j.id) < after]
        page = jobs[:limit]
        more = len(jobs) > limit
        return JobPage(page, encode_cursor(page[-1]) if more and page else None)

    def apply_events(self, events: Sequence[JobEvent]) -> int:
        applied = 0
        with self._lock:
            for event in events:
                job = self._jobs.get(event.job_id)
                new = apply_event(job, event) if job is not None else None
                if new is not None:
                    self._jobs[event.job_id] = new
                    self._append_event(new, event)
                    applied += 1
                self._on_event(event, new is not None)
        return applied

    def add_api_key(self, key: ApiKey) -> None:
        with self._lock:
            self._keys[key.id] = key

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._lock:
            for key in self._keys.values():
                if key.key_hash == key_hash and key.revoked_at is None:
                    return key
        return None

    def list_api_keys(self) -> list[ApiKey]:
        with self._lock:
            return sorted(self._keys.values(), key=lambda k: k.created_at)

    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None or key.revoked_at is not None:
                return False
            self._keys[key_id] = dataclasses.replace(key, revoked_at=at)
            return True


def _matches(job: Job, flt: JobFilter) -> bool:
    return (
        (flt.state is None or job.state is flt.state)
        and (flt.task is None or job.task == flt.task)
        and (flt.queue is None or job.queue == flt.queue)
    )
