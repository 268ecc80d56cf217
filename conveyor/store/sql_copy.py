"""Bulk job inserts on PostgreSQL with ``COPY ... FROM STDIN`` (psycopg).

A batch of 1,000 jobs through SQLAlchemy's multi-row INSERT spends most of its
client time binding parameters (a JSON serialiser and a timestamp conversion per
value). ``COPY`` streams the rows in psycopg's text format: the same columns, the
same values (JSON as ``json.dumps`` text, as SQLAlchemy's JSON type writes them,
timestamps aware UTC), in the caller's transaction. Other databases keep the
INSERT (see ``SqlWorkflowMixin._insert_jobs``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import Enum
from operator import attrgetter
from typing import Any

from sqlalchemy import JSON, Connection
from sqlalchemy.exc import DBAPIError

from conveyor.jobs import Job
from conveyor.store.observability import created_data
from conveyor.store.schema import job_events, jobs

#: every column of ``jobs``, in the table's order
_JOB_COLUMNS = tuple(column.name for column in jobs.columns)
#: the columns whose values are JSON text
_JSON_COLUMNS = frozenset(c.name for c in jobs.columns if isinstance(c.type, JSON))
_EVENT_COLUMNS = ("job_id", "task", "queue", "state", "at", "data")

_COPY_JOBS = f"COPY {jobs.name} ({', '.join(_JOB_COLUMNS)}) FROM STDIN"
_COPY_EVENTS = f"COPY {job_events.name} ({', '.join(_EVENT_COLUMNS)}) FROM STDIN"


def on_psycopg(conn: Connection) -> bool:
    """Whether ``conn`` is PostgreSQL through psycopg 3: the driver whose COPY this module
    uses, and whose connection :mod:`conveyor.store.sql_job_read` reads through."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def _enum_value(value: Enum) -> Any:
    return value.value


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = dict(value)
    elif isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


#: the jobs row of a Job as a tuple in column order (one C call), then the conversions
_columns_of = attrgetter(*_JOB_COLUMNS)
_CONVERT = tuple(
    (index, _json if name in _JSON_COLUMNS else _enum_value)
    for index, name in enumerate(_JOB_COLUMNS)
    if name in _JSON_COLUMNS or name == "state"
)


def _job_values(job: Job) -> list[Any]:
    values = list(_columns_of(job))
    for index, convert in _CONVERT:
        values[index] = convert(values[index])
    return values


def copy_jobs(conn: Connection, new_jobs: Sequence[Job]) -> None:
    """Write ``new_jobs`` and their "created" history rows (as create_job writes them)
    with two COPY statements in ``conn``'s transaction. A driver error is raised as
    SQLAlchemy's (an IntegrityError for a taken id), as an INSERT would raise it."""
    raw = conn.connection.driver_connection
    assert raw is not None  # (a live connection inside a transaction)
    statement = _COPY_JOBS
    try:
        with raw.cursor() as cursor:
            with cursor.copy(_COPY_JOBS) as copy:
                for job in new_jobs:
                    copy.write_row(_job_values(job))
            statement = _COPY_EVENTS
            with cursor.copy(_COPY_EVENTS) as copy:
                for job in new_jobs:
                    data = json.dumps(created_data(job))
                    state = job.state.value
                    copy.write_row((job.id, job.task, job.queue, state, job.created_at, data))
    except raw.Error as exc:  # (psycopg's base error, on the connection as in DB-API)
        raise DBAPIError.instance(statement, None, exc, type(raw).Error) from exc
