"""FlowStore in memory (mixed into MemoryStore)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import datetime

from conveyor.policies.concurrency import Slot, decide_slot
from conveyor.policies.ratelimit import Rate, decide
from conveyor.store.flow import QueueState


class MemoryFlowMixin:
    _lock: threading.RLock

    def _init_flow(self) -> None:
        self._buckets: dict[str, float] = {}
        self._reservations: dict[str, float] = {}
        self._starts: dict[str, dict[str, float]] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._queue_states: dict[str, QueueState] = {}
        self._consumers: dict[str, tuple[tuple[str, ...], datetime]] = {}

    def take_rate_token(
        self, bucket: str, rate: Rate, job_id: str, now: float | None = None
    ) -> float:
        with self._lock:
            now = time.time() if now is None else now
            starts = self._starts.setdefault(bucket, {})
            for old in [job for job, at in starts.items() if at <= now - rate.guard_window]:
                del starts[old]
            reserved = self._reservations.get(job_id)
            tat = self._buckets.get(bucket)
            decision = decide(rate, now, tat, reserved, starts.values())
            if decision.tat is not None:
                self._buckets[bucket] = decision.tat
            if decision.reservation is None:
                self._reservations.pop(job_id, None)
            else:
                self._reservations[job_id] = decision.reservation
            if decision.allowed:
                starts[job_id] = now
            return decision.wait

    def acquire_slot(
        self,
        key: str,
        job_id: str,
        limit: int,
        ttl: float,
        retry_delay: float,
        now: float | None = None,
    ) -> Slot:
        with self._lock:
            now = time.time() if now is None else now
            leases = self._slots.setdefault(key, {})
            for holder in [job for job, expiry in leases.items() if expiry <= now]:
                del leases[holder]
            slot = decide_slot(leases, job_id, limit, now, retry_delay)
            if slot.acquired:
                leases[job_id] = now + ttl
            return slot

    def renew_slots(
        self, leases: Sequence[tuple[str, str]], ttl: float, now: float | None = None
    ) -> None:
        with self._lock:
            expires = (time.time() if now is None else now) + ttl
            for key, job_id in leases:
                held = self._slots.get(key, {})
                if job_id in held:
                    held[job_id] = expires

    def release_slot(self, key: str, job_id: str) -> None:
        with self._lock:
            self._slots.get(key, {}).pop(job_id, None)

    def set_queue_paused(self, name: str, paused: bool, at: datetime) -> None:
        with self._lock:
            self._queue_states[name] = QueueState(name, paused, at)

    def list_queue_states(self) -> list[QueueState]:
        with self._lock:
            return sorted(self._queue_states.values(), key=lambda state: state.name)

    def record_consumers(self, worker: str, queues: Sequence[str], at: datetime) -> None:
        with self._lock:
            self._consumers[worker] = (tuple(queues), at)

    def list_consumers(self, seen_since: datetime) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        with self._lock:
            for worker, (queues, at) in sorted(self._consumers.items()):
                if at >= seen_since:
                    for queue in queues:
                        out.setdefault(queue, []).append(worker)
        return out
