"""PostgreSQL round trips and time of the job store's hot writes.

Times ``SqlStore.apply_events`` for batches of 1, 10 and 200 jobs x (STARTED, SUCCEEDED)
and ``create_job`` x 1,000, and counts what goes to the server per operation:

* statements: SQLAlchemy's ``before_cursor_execute`` event;
* round trips: every psycopg ``execute``/``executemany`` (statements and pool pings alike),
  plus the ``BEGIN`` psycopg sends before the first statement of a transaction, plus
  ``COMMIT``/``ROLLBACK``;
* CPU: this process's (``time.process_time``) and the PostgreSQL backends' serving the
  store (utime + stime from ``/proc/<pid>/stat``; the server must run on this machine),
  which on a loaded machine say more than the wall-clock times.

Usage::

    python -m bench.store_roundtrips --url postgresql+psycopg://postgres@127.0.0.1:5432/bench

The database is migrated and its jobs emptied first; use one of your own.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import event

from bench.suite.procs import cpu_seconds
from conveyor.jobs import Job, JobEvent, JobState, utcnow
from conveyor.store.sql import SqlStore

BATCH_SIZES = (1, 10, 200)
#: events written per batch size (so each size gets a comparable amount of work)
EVENTS_PER_SIZE = 4_000
CREATES = 1_000


@dataclass
class Counter:
    statements: int = 0
    round_trips: int = 0
    active: bool = False
    names: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.statements = self.round_trips = 0
        self.names = {}


COUNTER = Counter()


def _count_round_trip(conn: Any, what: str) -> None:
    if not COUNTER.active:
        return
    idle = conn.info.transaction_status == TransactionStatus.IDLE
    if not conn.autocommit and idle and what not in ("COMMIT", "ROLLBACK"):
        COUNTER.round_trips += 1  # the implicit BEGIN
        COUNTER.names["BEGIN"] = COUNTER.names.get("BEGIN", 0) + 1
    COUNTER.round_trips += 1
    COUNTER.names[what] = COUNTER.names.get(what, 0) + 1


def _patch_psycopg() -> None:
    """Count round trips at the driver (pings included: they bypass SQLAlchemy's events)."""
    cursor_execute = psycopg.Cursor.execute
    cursor_executemany = psycopg.Cursor.executemany
    commit = psycopg.Connection.commit
    rollback = psycopg.Connection.rollback

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sql = query if isinstance(query, str) else str(query)
        _count_round_trip(self.connection, sql.split(None, 1)[0].upper() if sql else "?")
        return cursor_execute(self, query, *args, **kwargs)

    def executemany(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        _count_round_trip(self.connection, "EXECUTEMANY")
        return cursor_executemany(self, query, *args, **kwargs)

    def do_commit(self: Any) -> Any:
        if self.info.transaction_status != TransactionStatus.IDLE:
            _count_round_trip(self, "COMMIT")
        return commit(self)

    def do_rollback(self: Any) -> Any:
        if self.info.transaction_status != TransactionStatus.IDLE:
            _count_round_trip(self, "ROLLBACK")
        return rollback(self)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]
    psycopg.Connection.commit = do_commit  # type: ignore[method-assign]
    psycopg.Connection.rollback = do_rollback  # type: ignore[method-assign]


@contextmanager
def counting() -> Iterator[Counter]:
    COUNTER.reset()
    COUNTER.active = True
    try:
        yield COUNTER
    finally:
        COUNTER.active = False


def _new_job(run: str, n: int) -> Job:
    now = utcnow()
    return Job(
        id=f"{run}-{n}",
        task="bench.noop",
        queue="default",
        state=JobState.QUEUED,
        created_at=now,
        updated_at=now,
    )


def _events(job_ids: list[str]) -> list[JobEvent]:
    """Each job's STARTED and SUCCEEDED, in the order a worker records them."""
    out: list[JobEvent] = []
    for job_id in job_ids:
        out.append(JobEvent(job_id, JobState.STARTED, attempt=1, worker="bench@host"))
        out.append(JobEvent(job_id, JobState.SUCCEEDED, attempt=1, worker="bench@host"))
    return out


@dataclass
class Cpu:
    """CPU seconds used during the timed actions: this process and the store's backends."""

    store: SqlStore
    client: float = 0.0
    server: float = 0.0
    _pids: list[int] = field(default_factory=list)

    def backends(self) -> list[int]:
        # every backend of the bench's database (the store's pooled connections)
        with self.store.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            ).all()
        return [int(row[0]) for row in rows]

    def server_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self._pids)

    def measure(self, action: Callable[[], Any]) -> float:
        if not self._pids:
            self._pids = self.backends()
        client, server = time.process_time(), self.server_seconds()
        start = time.perf_counter()
        action()
        elapsed = time.perf_counter() - start
        self.client += time.process_time() - client
        self.server += self.server_seconds() - server
        return elapsed

    def reset(self) -> None:
        self.client = self.server = 0.0
        self._pids = []


CPU: Cpu | None = None


def _timed(calls: int, setup: Callable[[], Any], action: Callable[[Any], Any]) -> list[float]:
    assert CPU is not None
    CPU.reset()
    times = []
    for _ in range(calls):
        arg = setup()
        times.append(CPU.measure(lambda arg=arg: action(arg)))
    return times


def bench_apply_events(store: SqlStore, size: int) -> dict[str, float]:
    assert CPU is not None
    batches = max(EVENTS_PER_SIZE // (2 * size), 5)
    run = uuid.uuid4().hex[:8]
    counter = iter(range(10**9))

    def setup() -> list[JobEvent]:
        ids = []
        for _ in range(size):
            job = _new_job(run, next(counter))
            store.create_job(job)
            ids.append(job.id)
        return _events(ids)

    applied: list[int] = []

    def action(events: list[JobEvent]) -> None:
        COUNTER.active = True
        applied.append(store.apply_events(events))
        COUNTER.active = False

    COUNTER.reset()
    times = _timed(batches, setup, action)
    assert all(n == 2 * size for n in applied), applied
    return {
        "batches": batches,
        "ms_per_batch": statistics.median(times) * 1000,
        "us_per_job": statistics.median(times) / size * 1e6,
        "statements_per_batch": COUNTER.statements / batches,
        "round_trips_per_batch": COUNTER.round_trips / batches,
        "client_cpu_us_per_job": CPU.client / batches / size * 1e6,
        "server_cpu_us_per_job": CPU.server / batches / size * 1e6,
    }


def bench_create_job(store: SqlStore) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    jobs = [_new_job(run, n) for n in range(CREATES)]
    assert CPU is not None
    CPU.reset()
    with counting() as count:
        elapsed = CPU.measure(lambda: [store.create_job(job) for job in jobs])
    return {
        "calls": CREATES,
        "us_per_call": elapsed / CREATES * 1e6,
        "statements_per_call": count.statements / CREATES,
        "round_trips_per_call": count.round_trips / CREATES,
        "client_cpu_us_per_call": CPU.client / CREATES * 1e6,
        "server_cpu_us_per_call": CPU.server / CREATES * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the whole set")
    args = parser.parse_args()
    _patch_psycopg()
    store = SqlStore(args.url)
    store.migrate()
    global CPU  # noqa: PLW0603 (one store per run)
    CPU = Cpu(store)

    def on_statement(*_: Any) -> None:
        if COUNTER.active:
            COUNTER.statements += 1

    event.listen(store.engine, "before_cursor_execute", on_statement)
    try:
        for run in range(args.repeat):
            print(f"-- run {run + 1}")
            for size in BATCH_SIZES:
                figures = bench_apply_events(store, size)
                print(f"apply_events {size:>3} jobs x 2 events: " + _fmt(figures))
            print("create_job:                       " + _fmt(bench_create_job(store)))
    finally:
        store.close()


def _fmt(figures: dict[str, float]) -> str:
    return ", ".join(
        f"{k} {v:.0f}" if float(v).is_integer() else f"{k} {v:.2f}" for k, v in figures.items()
    )


if __name__ == "__main__":
    main()
