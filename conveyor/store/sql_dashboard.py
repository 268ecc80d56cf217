"""The dashboard's queries on the SQL store (see conveyor.store.dashboard)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Text,
    and_,
    cast,
    func,
    literal,
    or_,
    select,
)

from conveyor.jobs import Job, JobState
from conveyor.store.base import JobPage, decode_cursor, encode_cursor
from conveyor.store.dashboard import (
    FAILURE_STATES,
    JobQuery,
    ThroughputBucket,
    empty_buckets,
)
from conveyor.store.schema import jobs

LIKE_ESCAPE = "\\"


def search_text() -> ColumnElement[str]:
    """The text the Jobs page searches: arguments, keyword arguments (as JSON) and error.

    The PostgreSQL trigram index documented in docs/dashboard.md is built on exactly
    this expression, so keep the two in step.
    """
    space = literal(" ", String)
    return (
        cast(jobs.c.args, Text)
        + space
        + cast(jobs.c.kwargs, Text)
        + space
        + func.coalesce(jobs.c.error, literal("", String))
    )


def like_pattern(needle: str) -> str:
    escaped = (
        needle.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%")
    ).replace("_", LIKE_ESCAPE + "_")
    return f"%{escaped}%"


def needle_forms(needle: str) -> list[str]:
    """The needle as typed and as it appears inside stored JSON (escaped), if different."""
    in_json = json.dumps(needle)[1:-1]
    return [needle] if in_json == needle else [needle, in_json]


def _text_condition(needle: str) -> ColumnElement[bool]:
    hay = search_text()
    forms = needle_forms(needle)
    return or_(*(hay.ilike(like_pattern(form), escape=LIKE_ESCAPE) for form in forms))


def _query_conditions(query: JobQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.states:
        conditions.append(jobs.c.state.in_(sorted(state.value for state in query.states)))
    if query.task:
        conditions.append(jobs.c.task == query.task)
    if query.queue:
        conditions.append(jobs.c.queue == query.queue)
    if query.created_after is not None:
        conditions.append(jobs.c.created_at >= query.created_after)
    if query.created_before is not None:
        conditions.append(jobs.c.created_at < query.created_before)
    if query.text:
        conditions.append(_text_condition(query.text))
    return conditions


def _after_cursor(cursor: str) -> ColumnElement[bool]:
    created, job_id = decode_cursor(cursor)
    return or_(
        jobs.c.created_at < created,
        and_(jobs.c.created_at == created, jobs.c.id < job_id),
    )


class SqlDashboardMixin:
    """Mixed into SqlStore; uses its ``_tx``."""

    def _tx(self, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def search_jobs(self, query: JobQuery, limit: int, cursor: str | None = None) -> JobPage:
        limit = max(limit, 0)
        stmt: Select[Any] = select(jobs).where(*_query_conditions(query))
        if cursor is not None:
            stmt = stmt.where(_after_cursor(cursor))
        stmt = stmt.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
        with self._tx() as conn:
            rows = conn.execute(stmt).all()
        found = [Job.from_row(dict(row._mapping)) for row in rows]
        page = found[:limit]
        more = len(found) > len(page)
        return JobPage(page, encode_cursor(page[-1]) if more and page else None)

    def count_jobs_by_queue(self) -> Mapping[str, Mapping[JobState, int]]:
        stmt = select(jobs.c.queue, jobs.c.state, func.count()).group_by(jobs.c.queue, jobs.c.state)
        with self._tx() as conn:
            rows = conn.execute(stmt).all()
        counts: dict[str, dict[JobState, int]] = {}
        for queue, state, count in rows:
            counts.setdefault(queue, {})[JobState(state)] = int(count)
        return counts

    def count_finished(
        self, since: datetime, until: datetime, bucket_seconds: int
    ) -> list[ThroughputBucket]:
        failures = {state.value for state in FAILURE_STATES}
        buckets = empty_buckets(since, until, bucket_seconds)
        with self._tx() as conn:
            bucket = _bucket_of(conn.dialect.name, since, bucket_seconds)
            stmt = (
                select(bucket, jobs.c.state, func.count())
                # only final jobs have finished_at: the range alone picks the covering index
                .where(jobs.c.finished_at >= since, jobs.c.finished_at < until)
                .group_by(bucket, jobs.c.state)
            )
            rows = conn.execute(stmt).all()
        tallies = {index: [0, 0] for index in range(len(buckets))}
        for index, state, count in rows:
            tally = tallies.get(int(index))
            if tally is not None and state == JobState.SUCCEEDED.value:
                tally[0] += int(count)
            elif tally is not None and state in failures:
                tally[1] += int(count)
        return [
            ThroughputBucket(bucket.start, *tallies[index]) for index, bucket in enumerate(buckets)
        ]


#: Julian day number of the Unix epoch (SQLite's julianday() counts in these).
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


def _bucket_of(dialect: str, since: datetime, bucket_seconds: int) -> ColumnElement[Any]:
    """SQL for ``floor((finished_at - since) / bucket_seconds)`` on this dialect."""
    if dialect == "sqlite":
        since_day = since.timestamp() / 86400 + _UNIX_EPOCH_JULIAN_DAY
        # julianday() is a double accurate to ~50 µs: round to the millisecond first
        elapsed = func.round((func.julianday(jobs.c.finished_at) - since_day) * 86400.0, 3)
        return cast(elapsed / bucket_seconds, Integer)
    seconds = func.extract("epoch", jobs.c.finished_at) - since.timestamp()
    return func.floor(seconds / bucket_seconds)
