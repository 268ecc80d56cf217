"""Database maintenance: ``maintenance.purge_rows``, ``refresh_views``, ``analyze``.

Every name (table, column, view) is checked against the database's real schema
before it is used, so an attempted injection through a name is refused with a
PermanentError and nothing runs. See ``conveyor.catalog.database``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import Column, Date, DateTime, Engine, Table, delete, select, text, tuple_
from sqlalchemy.sql.elements import ColumnElement

from conveyor.catalog.common import Duration
from conveyor.catalog.database import (
    db_errors,
    engine_for,
    existing_table,
    existing_views,
    quoted,
    split_name,
)
from conveyor.context import progress
from conveyor.errors import PermanentError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task

RETRY = RetryPolicy(max_retries=3, base_delay=30.0, max_delay=600.0, retry_on=())


def _timestamp_column(table: Table, name: str) -> Column[Any]:
    column = table.columns.get(name)
    if column is None:
        raise PermanentError(f"table {table.name!r} has no column {name!r}")
    if not isinstance(column.type, (DateTime, Date)):
        raise PermanentError(f"column {name!r} is not a date/time column ({column.type})")
    return column


def _cutoff(column: Column[Any], older_than: timedelta) -> datetime:
    cutoff = datetime.now(UTC) - older_than
    aware = isinstance(column.type, DateTime) and bool(column.type.timezone)
    return cutoff if aware else cutoff.replace(tzinfo=None)


def _batch_condition(table: Table, where: ColumnElement[bool], size: int) -> ColumnElement[bool]:
    """``primary key IN (first ``size`` matching keys)`` — a portable batched DELETE."""
    keys = list(table.primary_key.columns)
    chosen = select(*keys).where(where).limit(size)
    if len(keys) == 1:
        return keys[0].in_(chosen.scalar_subquery())
    return tuple_(*keys).in_(chosen)


def _purge(engine: Engine, table: Table, where: ColumnElement[bool], batch_size: int) -> int:
    if not table.primary_key.columns:  # no key to batch by: one statement
        with db_errors(), engine.begin() as conn:
            return int(conn.execute(delete(table).where(where)).rowcount or 0)
    deleted = 0
    while True:
        with db_errors(), engine.begin() as conn:
            count = int(
                conn.execute(
                    delete(table).where(_batch_condition(table, where, batch_size))
                ).rowcount
                or 0
            )
        deleted += count
        progress(deleted, None, f"deleted {deleted} rows from {table.name}")
        if count < batch_size:
            return deleted


@task(
    name="maintenance.purge_rows",
    queue="maintenance",
    retry=RETRY,
    time_limit=3600,
    soft_time_limit=3540,
)
def purge_rows(
    table: Annotated[str, Field(description="Table ([schema.]name); must exist.")],
    timestamp_column: Annotated[
        str, Field(description="Date/time column compared with older_than.")
    ],
    older_than: Annotated[Duration, Field(description="Rows older than this are deleted.")],
    batch_size: Annotated[
        int, Field(ge=1, le=100_000, description="Rows deleted per transaction.")
    ] = 1000,
    database_url: Annotated[
        str | None,
        Field(description="SQLAlchemy URL of the database (default: CONVEYOR_DATABASE_URL)."),
    ] = None,
) -> dict[str, Any]:
    """Delete rows of ``table`` whose ``timestamp_column`` is older than ``older_than``,
    ``batch_size`` rows per transaction (retention: "delete data older than a year",
    "clean up expired tokens"). Table and column must exist in the real schema."""
    engine = engine_for(database_url)
    reflected = existing_table(engine, table)
    column = _timestamp_column(reflected, timestamp_column)
    cutoff = _cutoff(column, older_than)
    deleted = _purge(engine, reflected, column < cutoff, batch_size)
    return {"table": table, "deleted": deleted, "cutoff": cutoff.isoformat()}


@task(
    name="maintenance.refresh_views",
    queue="maintenance",
    retry=RETRY,
    time_limit=3600,
    soft_time_limit=3540,
)
def refresh_views(
    names: Annotated[
        list[str],
        Field(
            min_length=1,
            max_length=100,
            description="Materialized views ([schema.]name); each must exist.",
        ),
    ],
    concurrently: Annotated[
        bool,
        Field(
            description="REFRESH ... CONCURRENTLY (readers are not blocked; needs a unique index)."
        ),
    ] = False,
    database_url: Annotated[
        str | None,
        Field(description="SQLAlchemy URL of the database (default: CONVEYOR_DATABASE_URL)."),
    ] = None,
) -> dict[str, Any]:
    """``REFRESH MATERIALIZED VIEW [CONCURRENTLY]`` each view (PostgreSQL only); every name
    must be an existing materialized view. CONCURRENTLY needs a unique index on the view."""
    engine = engine_for(database_url)
    if engine.dialect.name != "postgresql":
        raise PermanentError("materialized views need PostgreSQL")
    views = existing_views(engine, names)
    mode = "CONCURRENTLY " if concurrently else ""
    refreshed = []
    for (schema, view), name in zip(views, names, strict=True):
        statement = text(f"REFRESH MATERIALIZED VIEW {mode}{quoted(engine, schema, view)}")
        with db_errors(), engine.begin() as conn:
            conn.execute(statement)
        refreshed.append(name)
        progress(len(refreshed), len(views), f"refreshed {name}")
    return {"refreshed": refreshed, "concurrently": concurrently}


def _analyze_statements(engine: Engine, tables: list[str] | None, vacuum: bool) -> list[str]:
    verb = "VACUUM ANALYZE" if vacuum else "ANALYZE"
    if engine.dialect.name == "sqlite":
        statements = ["VACUUM"] if vacuum else []
        if not tables:
            return [*statements, "ANALYZE"]
        return [*statements, *(f"ANALYZE {_checked(engine, t)}" for t in tables)]
    if not tables:
        return [verb]
    return [f"{verb} {_checked(engine, t)}" for t in tables]


def _checked(engine: Engine, name: str) -> str:
    existing_table(engine, name)
    schema, table = split_name(name)
    return quoted(engine, schema, table)


@task(
    name="maintenance.analyze",
    queue="maintenance",
    retry=RETRY,
    time_limit=3600,
    soft_time_limit=3540,
)
def analyze(
    tables: Annotated[
        list[str] | None, Field(description="Tables to analyze (default: the whole database).")
    ] = None,
    vacuum: Annotated[bool, Field(description="VACUUM first.")] = False,
    database_url: Annotated[
        str | None,
        Field(description="SQLAlchemy URL of the database (default: CONVEYOR_DATABASE_URL)."),
    ] = None,
) -> dict[str, Any]:
    """Update the planner statistics (``ANALYZE``) of ``tables`` (default: all), with
    ``vacuum`` first (PostgreSQL ``VACUUM ANALYZE``; SQLite ``VACUUM`` of the whole file)."""
    engine = engine_for(database_url)
    statements = _analyze_statements(engine, tables, vacuum)
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    for done, statement in enumerate(statements, start=1):
        with db_errors(), autocommit.connect() as conn:
            conn.execute(text(statement))
        progress(done, len(statements), statement)
    return {"statements": statements, "dialect": engine.dialect.name}
