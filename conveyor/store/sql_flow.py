"""FlowStore on SQL (mixed into SqlStore): one row per bucket, locked for each take.

Works on SQLite (a write transaction takes the database lock up front) and on
PostgreSQL (``SELECT ... FOR UPDATE`` on the bucket row), so concurrent workers
on any number of machines see one bucket.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from conveyor.policies.concurrency import Slot, decide_slot
from conveyor.policies.ratelimit import Rate, decide
from conveyor.store.flow import QueueState
from conveyor.store.schema import (
    concurrency_leases,
    queue_consumers,
    queue_states,
    rate_buckets,
    rate_reservations,
    rate_starts,
)


def _insert_ignore(conn: Connection, table: Any, row: dict[str, Any]) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).values(row).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).values(row).on_conflict_do_nothing()
    return insert(table).values(row)


def _locked_bucket(conn: Connection, name: str) -> float | None:
    """The bucket's state, with its row locked until the transaction ends."""
    conn.execute(_insert_ignore(conn, rate_buckets, {"name": name, "tat": None}))
    query = select(rate_buckets.c.tat).where(rate_buckets.c.name == name).with_for_update()
    value = conn.execute(query).scalar_one()
    return float(value) if value is not None else None


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _recent_starts(conn: Connection, bucket: str, now: float, rate: Rate) -> list[float]:
    """The bucket's start log within the last period (older entries are deleted)."""
    table = rate_starts
    old = and_(table.c.bucket == bucket, table.c.at <= now - rate.guard_window)
    conn.execute(delete(table).where(old))
    return [
        float(at)
        for at in conn.execute(select(table.c.at).where(table.c.bucket == bucket)).scalars()
    ]


def _log_start(conn: Connection, bucket: str, job_id: str, now: float) -> None:
    table = rate_starts
    conn.execute(delete(table).where(table.c.bucket == bucket, table.c.job_id == job_id))
    conn.execute(insert(table).values(bucket=bucket, job_id=job_id, at=now))


class SqlFlowMixin:
    """Needs ``_tx`` from SqlStore."""

    def _tx(self, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    # -- rate limits ---------------------------------------------------------------
    def take_rate_token(
        self, bucket: str, rate: Rate, job_id: str, now: float | None = None
    ) -> float:
        mine = rate_reservations.c.job_id == job_id
        with self._tx(write=True) as conn:
            tat = _locked_bucket(conn, bucket)
            now = _now(now)
            found = conn.execute(select(rate_reservations.c.due).where(mine)).scalar_one_or_none()
            reserved = float(found) if found is not None else None
            decision = decide(rate, now, tat, reserved, _recent_starts(conn, bucket, now, rate))
            if decision.tat is not None:
                conn.execute(
                    update(rate_buckets)
                    .where(rate_buckets.c.name == bucket)
                    .values(tat=decision.tat)
                )
            if decision.reservation != reserved:
                conn.execute(delete(rate_reservations).where(mine))
                if decision.reservation is not None:
                    row = {"job_id": job_id, "bucket": bucket, "due": decision.reservation}
                    conn.execute(insert(rate_reservations).values(row))
            if decision.allowed:
                _log_start(conn, bucket, job_id, now)
            # reservations of jobs that never came back (cancelled, purged)
            stale = and_(rate_reservations.c.bucket == bucket, rate_reservations.c.due < now - 3600)
            conn.execute(delete(rate_reservations).where(stale))
            return decision.wait

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
        table = concurrency_leases
        with self._tx(write=True) as conn:
            _locked_bucket(conn, f"lease:{key}")  # serialises acquires of this key
            now = _now(now)
            expires = now + ttl
            conn.execute(delete(table).where(table.c.key == key, table.c.expires <= now))
            rows = conn.execute(select(table.c.job_id, table.c.expires).where(table.c.key == key))
            leases = {row.job_id: float(row.expires) for row in rows}
            slot = decide_slot(leases, job_id, limit, now, retry_delay)
            if not slot.acquired:
                return slot
            if job_id in leases:
                mine = and_(table.c.key == key, table.c.job_id == job_id)
                conn.execute(update(table).where(mine).values(expires=expires))
            else:
                conn.execute(insert(table).values(key=key, job_id=job_id, expires=expires))
            return slot

    def renew_slots(
        self, leases: Sequence[tuple[str, str]], ttl: float, now: float | None = None
    ) -> None:
        if not leases:
            return
        table = concurrency_leases
        with self._tx(write=True) as conn:
            expires = _now(now) + ttl
            for key, job_id in leases:
                mine = and_(table.c.key == key, table.c.job_id == job_id)
                conn.execute(update(table).where(mine).values(expires=expires))

    def release_slot(self, key: str, job_id: str) -> None:
        table = concurrency_leases
        with self._tx(write=True) as conn:
            conn.execute(delete(table).where(table.c.key == key, table.c.job_id == job_id))

    # -- paused queues -------------------------------------------------------------
    def set_queue_paused(self, name: str, paused: bool, at: datetime) -> None:
        with self._tx(write=True) as conn:
            row = {"name": name, "paused": paused, "updated_at": at}
            conn.execute(_insert_ignore(conn, queue_states, row))
            conn.execute(
                update(queue_states)
                .where(queue_states.c.name == name)
                .values(paused=paused, updated_at=at)
            )

    def list_queue_states(self) -> list[QueueState]:
        with self._tx() as conn:
            rows = conn.execute(select(queue_states).order_by(queue_states.c.name)).all()
        return [QueueState(row.name, bool(row.paused), row.updated_at) for row in rows]

    # -- who consumes what ---------------------------------------------------------
    def record_consumers(self, worker: str, queues: Sequence[str], at: datetime) -> None:
        table = queue_consumers
        with self._tx(write=True) as conn:
            conn.execute(delete(table).where(table.c.worker == worker))
            rows = [{"worker": worker, "queue": queue, "seen_at": at} for queue in queues]
            if rows:
                conn.execute(insert(table), rows)
            else:  # a worker consuming nothing (every queue paused) is still alive
                conn.execute(insert(table).values(worker=worker, queue="", seen_at=at))

    def list_consumers(self, seen_since: datetime) -> dict[str, list[str]]:
        table = queue_consumers
        query = (
            select(table.c.queue, table.c.worker)
            .where(table.c.seen_at >= seen_since, table.c.queue != "")
            .order_by(table.c.queue, table.c.worker)
        )
        out: dict[str, list[str]] = {}
        with self._tx() as conn:
            for row in conn.execute(query):
                out.setdefault(row.queue, []).append(row.worker)
        return out
