"""Reading one job row on PostgreSQL through psycopg itself (the worker's gate read).

Every run reads its job before it starts (the cancel gate, flow control, the
completion callback share that one read). Through SQLAlchemy's result layer the
read cost ~255 µs of CPU against ~52 µs for the same prepared statement through
psycopg, over a ~70 µs round trip: psycopg builds the 27 columns' descriptions each
time SQLAlchemy asks for them, and the result layer processes every value
(docs/benchmarks.md). Here the statement (SQLAlchemy's own, compiled once for the
connection's dialect) goes straight to the driver connection and the row is
turned into a :class:`~conveyor.jobs.Job` as SQLAlchemy's column types would:
timestamps as aware UTC datetimes, JSON decoded (psycopg loads ``json`` itself).
A driver error is raised as SQLAlchemy's (so the store reports it as StoreError),
and a connection-level one invalidates the connection, as SQLAlchemy would.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import DBAPIError

from conveyor.jobs import Job
from conveyor.store.schema import UtcDateTime, as_utc, jobs

_COLUMNS = tuple(column.name for column in jobs.columns)
_TIMESTAMPS = tuple(
    index for index, column in enumerate(jobs.columns) if isinstance(column.type, UtcDateTime)
)
#: the job by id (``b_id``); the store's SQLAlchemy read on other databases uses it too
GET_JOB = select(*jobs.columns).where(jobs.c.id == bindparam("b_id"))


class JobReader:
    """The job row by id through the driver connection; one per store (its compiled SQL)."""

    def __init__(self) -> None:
        self._sql: str | None = None

    def get(self, conn: Connection, job_id: str) -> Job | None:
        if self._sql is None:
            self._sql = str(GET_JOB.compile(dialect=conn.dialect))
        raw = conn.connection.driver_connection
        assert raw is not None  # (a checked-out connection)
        try:
            row = raw.execute(self._sql, {"b_id": job_id}).fetchone()
        except raw.Error as exc:  # (psycopg's base error, on the connection as in DB-API)
            if isinstance(exc, raw.OperationalError):
                conn.invalidate(exc)  # (the pool replaces it, as after a lost connection)
            raise DBAPIError.instance(self._sql, None, exc, type(raw).Error) from exc
        return None if row is None else Job.from_row(_mapping(row))


def _mapping(row: Any) -> dict[str, Any]:
    values = list(row)
    for index in _TIMESTAMPS:
        if values[index] is not None:
            values[index] = as_utc(values[index])
    return dict(zip(_COLUMNS, values, strict=True))
