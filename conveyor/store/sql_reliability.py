"""ReliabilityStore on SQL (mixed into SqlStore)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from conveyor.jobs import Job, JobEvent, JobState
from conveyor.store.base import DuplicateJob
from conveyor.store.reliability import (
    Attempt,
    DeadLetter,
    DeadLetterFilter,
    DeadLetterPage,
    KeyConflict,
    attempt_changes,
    dead_letter_of,
    decode_dl_cursor,
    encode_dl_cursor,
)
from conveyor.store.schema import dead_letters, job_attempts, jobs
from conveyor.store.sql_dashboard import LIKE_ESCAPE, like_pattern

_CREATE_TRIES = 5


class SqlReliabilityMixin:
    """Needs ``_tx``, ``_single_read``, ``create_job`` and ``get_job`` from SqlStore."""

    def _tx(self, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _single_read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def create_job(self, job: Job) -> Job:
        raise NotImplementedError

    # -- creating jobs once ------------------------------------------------------
    def create_job_once(self, job: Job) -> tuple[Job, bool]:
        if job.idempotency_key is None and job.unique_key is None:
            return self.create_job(job), True
        for _ in range(_CREATE_TRIES):
            try:
                return self.create_job(job), True
            except DuplicateJob:
                existing = self._holder_of_keys(job)
            if existing is not None:
                return existing, False
        raise KeyConflict(f"could not create job {job.id}: its keys stayed taken")

    def _holder_of_keys(self, job: Job) -> Job | None:
        conditions = []
        if job.idempotency_key is not None:
            conditions.append(jobs.c.idempotency_key == job.idempotency_key)
        if job.unique_key is not None:
            conditions.append(jobs.c.unique_key == job.unique_key)
        with self._tx() as conn:
            row = conn.execute(select(jobs).where(or_(*conditions)).limit(1)).first()
            if row is None and conn.execute(select(jobs.c.id).where(jobs.c.id == job.id)).first():
                raise DuplicateJob(job.id)
        return None if row is None else Job.from_row(dict(row._mapping))

    def expire_idempotency_key(self, key: str, created_before: datetime) -> bool:
        query = (
            update(jobs)
            .where(jobs.c.idempotency_key == key, jobs.c.created_at < created_before)
            .values(idempotency_key=None)
        )
        with self._tx(write=True) as conn:
            return conn.execute(query).rowcount == 1

    # -- attempts and dead letters, written with each batch of events ------------
    def _on_event(self, conn: Connection, event: JobEvent, applied: bool) -> None:
        """Called by ``apply_events`` for every event, in the batch's transaction."""
        changes = attempt_changes(event)
        if changes is not None:
            _upsert_attempt(conn, event, changes)
        if applied and event.state is JobState.DEAD:
            row = conn.execute(select(jobs).where(jobs.c.id == event.job_id)).first()
            if row is not None:
                entry = dead_letter_of(Job.from_row(dict(row._mapping)), event)
                conn.execute(_insert_ignoring_conflict(conn, dead_letters, _dl_row(entry)))

    def list_attempts(self, job_ids: Sequence[str]) -> dict[str, list[Attempt]]:
        out: dict[str, list[Attempt]] = {job_id: [] for job_id in job_ids}
        if not job_ids:
            return out
        query = (
            select(job_attempts)
            .where(job_attempts.c.job_id.in_(list(job_ids)))
            .order_by(job_attempts.c.job_id, job_attempts.c.attempt)
        )
        with self._tx() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            out[row.job_id].append(_attempt_from_row(row._mapping))
        return out

    # -- delayed jobs ------------------------------------------------------------
    def claim_due_jobs(
        self, now: datetime, limit: int, *, due_by: datetime | None = None
    ) -> list[Job]:
        # one statement: the due ids (locked, skipping rows another claimer holds) become
        # QUEUED and come back whole, so a burst of due jobs costs one round trip per claim.
        # The ids are a MATERIALIZED CTE: as ``WHERE id IN (subquery)`` PostgreSQL may run
        # the LIMITed subquery more than once and claim more than ``limit`` rows.
        due = (
            select(jobs.c.id)
            .where(
                jobs.c.state == JobState.SCHEDULED.value,
                jobs.c.scheduled_for <= (due_by or now),
            )
            .order_by(jobs.c.scheduled_for)
            .limit(max(limit, 0))
            .with_for_update(skip_locked=True)
            .cte("due")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        claim = (
            update(jobs)
            .where(jobs.c.id == due.c.id, jobs.c.state == JobState.SCHEDULED.value)
            .values(state=JobState.QUEUED.value, updated_at=now)
            .returning(*jobs.c)
        )
        with self._tx(write=True) as conn:
            rows = conn.execute(claim).all()
        found = [Job.from_row(dict(row._mapping)) for row in rows]
        return sorted(found, key=lambda j: (j.scheduled_for or now, j.id))

    def next_due_at(self) -> datetime | None:
        query = select(func.min(jobs.c.scheduled_for)).where(
            jobs.c.state == JobState.SCHEDULED.value
        )
        with self._single_read() as conn:  # asked on every scheduler pass: no BEGIN/COMMIT
            value: datetime | None = conn.execute(query).scalar()
        return value

    def unclaim_job(self, job_id: str) -> bool:
        query = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state == JobState.QUEUED.value)
            .values(state=JobState.SCHEDULED.value)
        )
        with self._tx(write=True) as conn:
            return conn.execute(query).rowcount == 1

    # -- dead letters ------------------------------------------------------------
    def get_dead_letter(self, job_id: str) -> DeadLetter | None:
        with self._tx() as conn:
            row = conn.execute(select(dead_letters).where(dead_letters.c.job_id == job_id)).first()
        return None if row is None else _dl_from_row(row._mapping)

    def list_dead_letters(
        self, flt: DeadLetterFilter, limit: int, cursor: str | None = None
    ) -> DeadLetterPage:
        query = _dl_filtered(select(dead_letters), flt)
        if cursor is not None:
            at, job_id = decode_dl_cursor(cursor)
            query = query.where(
                or_(
                    dead_letters.c.dead_at < at,
                    and_(dead_letters.c.dead_at == at, dead_letters.c.job_id < job_id),
                )
            )
        query = query.order_by(dead_letters.c.dead_at.desc(), dead_letters.c.job_id.desc())
        with self._tx() as conn:
            rows = conn.execute(query.limit(max(limit, 0) + 1)).all()
        found = [_dl_from_row(row._mapping) for row in rows]
        page = found[: max(limit, 0)]
        more = len(found) > len(page)
        return DeadLetterPage(page, encode_dl_cursor(page[-1]) if more and page else None)

    def delete_dead_letter(self, job_id: str) -> bool:
        with self._tx(write=True) as conn:
            query = delete(dead_letters).where(dead_letters.c.job_id == job_id)
            return conn.execute(query).rowcount == 1

    def mark_dead_letter_replayed(self, job_id: str, new_job_id: str, at: datetime) -> bool:
        query = (
            update(dead_letters)
            .where(dead_letters.c.job_id == job_id, dead_letters.c.replayed_job_id.is_(None))
            .values(replayed_job_id=new_job_id, replayed_at=at)
        )
        with self._tx(write=True) as conn:
            return conn.execute(query).rowcount == 1

    def unmark_dead_letter_replayed(self, job_id: str) -> None:
        query = (
            update(dead_letters)
            .where(dead_letters.c.job_id == job_id)
            .values(replayed_job_id=None, replayed_at=None)
        )
        with self._tx(write=True) as conn:
            conn.execute(query)

    def trim_dead_letters(self, max_entries: int, dead_before: datetime) -> int:
        oldest_kept = (
            select(dead_letters.c.dead_at, dead_letters.c.job_id)
            .order_by(dead_letters.c.dead_at.desc(), dead_letters.c.job_id.desc())
            .offset(max_entries - 1)
            .limit(1)
        )
        with self._tx(write=True) as conn:
            removed = conn.execute(
                delete(dead_letters).where(dead_letters.c.dead_at < dead_before)
            ).rowcount
            boundary = conn.execute(oldest_kept).first()
            if boundary is not None:
                at, job_id = boundary
                older = or_(
                    dead_letters.c.dead_at < at,
                    and_(dead_letters.c.dead_at == at, dead_letters.c.job_id < job_id),
                )
                removed += conn.execute(delete(dead_letters).where(older)).rowcount
        return int(removed)


# -- helpers ---------------------------------------------------------------------
def _insert_ignoring_conflict(conn: Connection, table: Any, row: dict[str, Any]) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).values(row).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table).values(row).on_conflict_do_nothing()
    return insert(table).values(row)


def insert_dead_letters(conn: Connection, entries: Sequence[DeadLetter]) -> None:
    """Dead letters of jobs that just became DEAD, in one statement (an existing one stays)."""
    if entries:
        statement = postgresql.insert(dead_letters).on_conflict_do_nothing()
        conn.execute(statement, [_dl_row(entry) for entry in entries])


def _upsert_attempt(conn: Connection, event: JobEvent, changes: dict[str, Any]) -> None:
    params = {f"b_{name}": value for name, value in changes.items()}
    params.update(b_job_id=event.job_id, b_attempt=event.attempt)
    columns = tuple(changes)
    if event.state is JobState.STARTED:
        # a redelivery of the same attempt keeps the first start, updates nothing else
        conn.execute(_attempt_insert(conn.dialect.name, columns), params)
        return
    if conn.execute(_attempt_update(columns), params).rowcount == 0:
        conn.execute(_attempt_insert(conn.dialect.name, columns), params)


# prebuilt statements with bound parameters (the worker's hot path: see sql._event_update)
def _attempt_bind(name: str) -> Any:
    return bindparam(f"b_{name}", type_=job_attempts.c[name].type)


@functools.cache
def _attempt_update(columns: tuple[str, ...]) -> Any:
    key = and_(
        job_attempts.c.job_id == bindparam("b_job_id"),
        job_attempts.c.attempt == bindparam("b_attempt"),
    )
    return update(job_attempts).where(key).values({name: _attempt_bind(name) for name in columns})


@functools.cache
def _attempt_insert(dialect: str, columns: tuple[str, ...]) -> Any:
    names = ("job_id", "attempt", *columns)
    values = {name: _attempt_bind(name) for name in names}
    if dialect == "postgresql":
        return postgresql.insert(job_attempts).values(values).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(job_attempts).values(values).on_conflict_do_nothing()
    return insert(job_attempts).values(values)


def _attempt_from_row(row: RowMapping) -> Attempt:
    return Attempt(
        job_id=row["job_id"],
        attempt=row["attempt"],
        state=JobState(row["state"]),
        reason=row["reason"],
        error=row["error"],
        error_type=row["error_type"],
        traceback=row["traceback"],
        worker=row["worker"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _dl_row(entry: DeadLetter) -> dict[str, Any]:
    return {
        "job_id": entry.job_id,
        "task": entry.task,
        "queue": entry.queue,
        "args": list(entry.args),
        "kwargs": dict(entry.kwargs),
        "priority": entry.priority,
        "retry": dict(entry.retry) if entry.retry is not None else None,
        "attempts": entry.attempts,
        "error": entry.error,
        "error_type": entry.error_type,
        "traceback": entry.traceback,
        "reason": entry.reason,
        "dead_at": entry.dead_at,
        "replayed_at": entry.replayed_at,
        "replayed_job_id": entry.replayed_job_id,
    }


def _dl_from_row(row: RowMapping) -> DeadLetter:
    values = dict(row)
    values["args"] = tuple(values.get("args") or ())
    values["kwargs"] = dict(values.get("kwargs") or {})
    return DeadLetter(**values)


def _dl_filtered(query: Select[Any], flt: DeadLetterFilter) -> Select[Any]:
    equal = (
        (dead_letters.c.task, flt.task),
        (dead_letters.c.queue, flt.queue),
        (dead_letters.c.error_type, flt.error_type),
        (dead_letters.c.reason, flt.reason),
    )
    for column, value in equal:
        if value is not None:
            query = query.where(column == value)
    if flt.since is not None:
        query = query.where(dead_letters.c.dead_at >= flt.since)
    if flt.until is not None:
        query = query.where(dead_letters.c.dead_at < flt.until)
    if flt.replayed is not None:
        column = dead_letters.c.replayed_job_id
        query = query.where(column.is_not(None) if flt.replayed else column.is_(None))
    if flt.text:
        pattern = like_pattern(flt.text)
        query = query.where(
            or_(
                dead_letters.c.error.ilike(pattern, escape=LIKE_ESCAPE),
                dead_letters.c.error_type.ilike(pattern, escape=LIKE_ESCAPE),
            )
        )
    return query
