"""The SQL side of the observability store operations (mixin of SqlStore)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    and_,
    bindparam,
    case,
    cast,
    delete,
    extract,
    func,
    insert,
    literal,
    select,
    text,
)

from conveyor.jobs import Job, JobEvent, JobState
from conveyor.store.observability import (
    EXECUTED_STATES,
    WAITING_STATES,
    CallbackDelivery,
    DurationKind,
    EventFilter,
    Histogram,
    JobCount,
    StoredEvent,
    created_data,
    event_data,
)
from conveyor.store.schema import callback_deliveries, job_events, jobs
from conveyor.store.sql_event_batch import UTC_TIMESTAMP, Applied, array_element

# prebuilt (the worker's hot path: see sql._event_update)
_TASK_AND_QUEUE = select(jobs.c.id, jobs.c.task, jobs.c.queue).where(
    jobs.c.id.in_(bindparam("b_ids", expanding=True))
)
_INSERT_EVENT = insert(job_events)
#: PostgreSQL: many history rows in one statement, ids in the order of the arrays
_INSERT_HISTORY_ARRAYS = text(
    "INSERT INTO job_events (job_id, task, queue, state, at, data) "
    "SELECT h.job_id, h.task, h.queue, h.state, h.at, CAST(h.data AS json) FROM unnest("
    "CAST(:h_job_id AS text[]), CAST(:h_task AS text[]), CAST(:h_queue AS text[]), "
    "CAST(:h_state AS text[]), CAST(:h_at AS timestamptz[]), CAST(:h_data AS text[])"
    ") WITH ORDINALITY AS h(job_id, task, queue, state, at, data, n) ORDER BY h.n"
)


class SqlObservability:
    """Mixin for SqlStore; uses its ``_tx`` and ``_is_sqlite``."""

    _tx: Callable[..., AbstractContextManager[Connection]]
    _is_sqlite: bool

    # -- writing events (inside the caller's transaction) -------------------------
    def _insert_created_event(self, conn: Connection, job: Job) -> None:
        self._insert_created_events(conn, [job])

    def _insert_created_events(self, conn: Connection, new_jobs: Sequence[Job]) -> None:
        """One "created" history row per new job (one statement, executemany)."""
        rows = [
            {
                "job_id": job.id,
                "task": job.task,
                "queue": job.queue,
                "state": job.state.value,
                "at": job.created_at,
                "data": created_data(job),
            }
            for job in new_jobs
        ]
        if rows:
            conn.execute(_INSERT_EVENT, rows)

    def _insert_applied_events(self, conn: Connection, applied: Sequence[JobEvent]) -> None:
        """Append one row per applied event; task and queue come from the jobs rows."""
        if not applied:
            return
        ids = sorted({e.job_id for e in applied})
        rows = conn.execute(_TASK_AND_QUEUE, {"b_ids": ids})
        where = {row.id: (row.task, row.queue) for row in rows}
        values = [_history_row(e, *where[e.job_id]) for e in applied]
        conn.execute(_INSERT_EVENT, values)

    def _insert_history(self, conn: Connection, applied: Sequence[Applied]) -> None:
        """One history row per applied event, in batch order; on PostgreSQL one statement
        (arrays) whatever the number of rows."""
        if not applied:
            return
        if conn.dialect.name != "postgresql":
            rows = [_history_row(a.event, a.task, a.queue) for a in applied]
            conn.execute(_INSERT_EVENT, rows)
            return
        params = {
            "h_job_id": [a.event.job_id for a in applied],
            "h_task": [a.task for a in applied],
            "h_queue": [a.queue for a in applied],
            "h_state": [a.event.state.value for a in applied],
            "h_at": [array_element(UTC_TIMESTAMP, a.event.at, conn.dialect) for a in applied],
            "h_data": [json.dumps(event_data(a.event)) for a in applied],
        }
        conn.execute(_INSERT_HISTORY_ARRAYS, params)

    # -- reading events -----------------------------------------------------------
    def list_job_events(self, after_id: int, flt: EventFilter, limit: int) -> list[StoredEvent]:
        query = select(job_events).where(job_events.c.id > after_id)
        if flt.task is not None:
            query = query.where(job_events.c.task == flt.task)
        if flt.queue is not None:
            query = query.where(job_events.c.queue == flt.queue)
        if flt.job_id is not None:
            query = query.where(job_events.c.job_id == flt.job_id)
        query = query.order_by(job_events.c.id).limit(max(limit, 0))
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [
            StoredEvent(
                int(r.id), r.job_id, r.task, r.queue, JobState(r.state), r.at, dict(r.data or {})
            )
            for r in rows
        ]

    def last_job_event_id(self) -> int:
        with self._tx() as conn:
            value = conn.execute(select(func.max(job_events.c.id))).scalar()
        return int(value or 0)

    def prune_job_events(self, before: datetime) -> int:
        with self._tx(write=True) as conn:
            return int(conn.execute(delete(job_events).where(job_events.c.at < before)).rowcount)

    # -- metrics ------------------------------------------------------------------
    def job_counts(self) -> list[JobCount]:
        waiting = sorted(s.value for s in WAITING_STATES)
        retries = case(
            (jobs.c.state.in_(waiting), jobs.c.attempts),
            (jobs.c.attempts > 0, jobs.c.attempts - 1),
            else_=0,
        )
        query = (
            select(
                jobs.c.task,
                jobs.c.queue,
                jobs.c.state,
                func.count().label("n"),
                func.sum(retries).label("retries"),
                func.max(func.coalesce(jobs.c.finished_at, jobs.c.started_at)).label("last"),
            )
            .group_by(jobs.c.task, jobs.c.queue, jobs.c.state)
            .order_by(jobs.c.task, jobs.c.queue, jobs.c.state)
        )
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [
            JobCount(
                r.task,
                r.queue,
                JobState(r.state),
                int(r.n),
                int(r.retries or 0),
                _as_utc(r.last),
            )
            for r in rows
        ]

    def _seconds(self, end: ColumnElement[Any], start: ColumnElement[Any]) -> ColumnElement[float]:
        if self._is_sqlite:
            return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)
        return cast(extract("epoch", end - start), Float)

    def _duration(self, kind: DurationKind) -> tuple[ColumnElement[float], ColumnElement[bool]]:
        if kind == "run":
            executed = sorted(s.value for s in EXECUTED_STATES)
            value = self._seconds(jobs.c.finished_at, jobs.c.started_at)
            return value, and_(
                jobs.c.state.in_(executed),
                jobs.c.started_at.is_not(None),
                jobs.c.finished_at.is_not(None),
            )
        due = func.coalesce(jobs.c.scheduled_for, jobs.c.created_at)
        value = self._seconds(jobs.c.started_at, due)
        return value, and_(jobs.c.attempts == 1, jobs.c.started_at.is_not(None))

    def duration_histograms(self, kind: DurationKind, bounds: Sequence[float]) -> list[Histogram]:
        value, condition = self._duration(kind)
        columns = [
            func.sum(case((value <= literal(float(bound)), 1), else_=0)).label(f"b{i}")
            for i, bound in enumerate(bounds)
        ]
        query = (
            select(
                jobs.c.task,
                jobs.c.queue,
                func.count().label("n"),
                func.sum(value).label("total"),
                *columns,
            )
            .where(condition)
            .group_by(jobs.c.task, jobs.c.queue)
            .order_by(jobs.c.task, jobs.c.queue)
        )
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [
            Histogram(
                r.task,
                r.queue,
                tuple(int(r._mapping[f"b{i}"] or 0) for i in range(len(bounds))),
                int(r.n),
                float(r.total or 0.0),
            )
            for r in rows
        ]

    # -- completion callbacks -----------------------------------------------------
    def add_callback_delivery(self, delivery: CallbackDelivery) -> None:
        row = {
            "job_id": delivery.job_id,
            "attempt": delivery.attempt,
            "url": delivery.url,
            "at": delivery.at,
            "ok": delivery.ok,
            "status_code": delivery.status_code,
            "error": delivery.error,
        }
        with self._tx(write=True) as conn:
            conn.execute(insert(callback_deliveries), [row])

    def list_callback_deliveries(self, job_id: str) -> list[CallbackDelivery]:
        query = (
            select(callback_deliveries)
            .where(callback_deliveries.c.job_id == job_id)
            .order_by(callback_deliveries.c.id)
        )
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return list(_deliveries(rows))


def _history_row(e: JobEvent, task: str, queue: str) -> dict[str, Any]:
    return {
        "job_id": e.job_id,
        "task": task,
        "queue": queue,
        "state": e.state.value,
        "at": e.at,
        "data": event_data(e),
    }


def _deliveries(rows: Sequence[Any]) -> Iterator[CallbackDelivery]:
    for r in rows:
        yield CallbackDelivery(
            r.job_id, int(r.attempt), r.url, r.at, bool(r.ok), r.status_code, r.error
        )


def _as_utc(value: datetime | str | None) -> datetime | None:
    """An aggregate's timestamp as aware UTC (SQLite may hand back a naive value or text)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
