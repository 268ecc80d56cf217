"""Store operations for flow control: rate-limit buckets, concurrency leases, paused queues.

``FlowStore`` is part of :class:`conveyor.store.base.JobStore`; SQL in
``sql_flow.py``, the in-memory twin in ``memory_flow.py``. The Redis
implementation of the same buckets and leases (used when Redis is available)
lives in :mod:`conveyor.limiter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from conveyor.policies.concurrency import Slot
from conveyor.policies.ratelimit import Rate


@dataclass(frozen=True, slots=True)
class QueueState:
    name: str
    paused: bool
    updated_at: datetime


class FlowStore(Protocol):
    # -- rate limits ---------------------------------------------------------------
    def take_rate_token(
        self, bucket: str, rate: Rate, job_id: str, now: float | None = None
    ) -> float:
        """Take (or reserve) a token for ``job_id``; 0 = run now, else seconds to wait.

        ``now`` (epoch seconds) defaults to the clock read once the bucket is locked.
        """
        ...

    # -- concurrency leases --------------------------------------------------------
    def acquire_slot(
        self,
        key: str,
        job_id: str,
        limit: int,
        ttl: float,
        retry_delay: float,
        now: float | None = None,
    ) -> Slot:
        """Hold one of ``limit`` slots of ``key`` for ``ttl`` s (or say how long to wait)."""
        ...

    def renew_slots(
        self, leases: Sequence[tuple[str, str]], ttl: float, now: float | None = None
    ) -> None: ...
    def release_slot(self, key: str, job_id: str) -> None: ...

    # -- paused queues -------------------------------------------------------------
    def set_queue_paused(self, name: str, paused: bool, at: datetime) -> None: ...
    def list_queue_states(self) -> list[QueueState]: ...

    # -- who consumes what (each worker reports every few seconds) -------------------
    def record_consumers(self, worker: str, queues: Sequence[str], at: datetime) -> None:
        """``worker`` consumes exactly ``queues`` now (its earlier report is replaced)."""
        ...

    def list_consumers(self, seen_since: datetime) -> dict[str, list[str]]:
        """Queue → the workers that reported consuming it since ``seen_since``."""
        ...
