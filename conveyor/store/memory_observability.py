"""The in-memory twin of the observability store operations."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from conveyor.jobs import Job, JobEvent
from conveyor.store.observability import (
    CallbackDelivery,
    DurationKind,
    EventFilter,
    Histogram,
    JobCount,
    StoredEvent,
    bucket_counts,
    created_data,
    duration_of,
    event_data,
    retries_of,
)


class MemoryObservability:
    """Mixin for MemoryStore; needs its ``_lock`` and ``_jobs``."""

    _lock: threading.RLock
    _jobs: dict[str, Job]

    def _init_observability(self) -> None:
        self._events: list[StoredEvent] = []
        self._event_ids = itertools.count(1)
        self._deliveries: list[CallbackDelivery] = []

    def _append_event(self, job: Job, event: JobEvent | None = None) -> None:
        """Record that ``job`` entered its current state (call with the lock held)."""
        data = created_data(job) if event is None else event_data(event)
        at = job.created_at if event is None else event.at
        stored = StoredEvent(
            next(self._event_ids), job.id, job.task, job.queue, job.state, at, data
        )
        self._events.append(stored)

    def list_job_events(self, after_id: int, flt: EventFilter, limit: int) -> list[StoredEvent]:
        with self._lock:
            found = [e for e in self._events if e.id > after_id and flt.matches(e)]
        return found[: max(limit, 0)]

    def last_job_event_id(self) -> int:
        with self._lock:
            return self._events[-1].id if self._events else 0

    def prune_job_events(self, before: datetime) -> int:
        with self._lock:
            kept = [e for e in self._events if e.at >= before]
            pruned = len(self._events) - len(kept)
            self._events = kept
        return pruned

    def job_counts(self) -> list[JobCount]:
        groups: dict[tuple[str, str, str], list[Job]] = defaultdict(list)
        with self._lock:
            for job in self._jobs.values():
                groups[(job.task, job.queue, job.state.value)].append(job)
        out = []
        for (task, queue, _), jobs in sorted(groups.items()):
            seen = [j.finished_at or j.started_at for j in jobs]
            last = max((s for s in seen if s is not None), default=None)
            retries = sum(retries_of(j.state, j.attempts) for j in jobs)
            out.append(JobCount(task, queue, jobs[0].state, len(jobs), retries, last))
        return out

    def duration_histograms(self, kind: DurationKind, bounds: Sequence[float]) -> list[Histogram]:
        groups: dict[tuple[str, str], list[float]] = defaultdict(list)
        with self._lock:
            for job in self._jobs.values():
                value = duration_of(job, kind)
                if value is not None:
                    groups[(job.task, job.queue)].append(value)
        return [
            Histogram(task, queue, bucket_counts(values, bounds), len(values), sum(values))
            for (task, queue), values in sorted(groups.items())
        ]

    def add_callback_delivery(self, delivery: CallbackDelivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    def list_callback_deliveries(self, job_id: str) -> list[CallbackDelivery]:
        with self._lock:
            return [d for d in self._deliveries if d.job_id == job_id]
