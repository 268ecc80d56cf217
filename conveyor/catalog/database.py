"""Reaching the database a data or maintenance task works on, and checking names against it.

The target is the task's ``database_url`` parameter or, when that is empty, the
job store's database (``CONVEYOR_DATABASE_URL``). Table, column and view names
are never put into SQL as given: they are looked up in the database's real schema
(SQLAlchemy inspection), and only names found there are used, quoted by the
dialect. Anything else is refused with a PermanentError.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, MetaData, Table, create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchTableError,
    OperationalError,
    SQLAlchemyError,
)

from conveyor.catalog.common import settings
from conveyor.errors import PermanentError, TemporaryError

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _forget_engines_in_child() -> None:
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_forget_engines_in_child)


def target_url(database_url: str | None) -> str:
    url = database_url or settings().effective_database_url
    if url.startswith("memory://"):
        raise PermanentError("no database: give database_url or set CONVEYOR_DATABASE_URL")
    return url


def engine_for(database_url: str | None) -> Engine:
    """A pooled engine for the target database (one per URL and process)."""
    url = target_url(database_url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            try:
                parsed = make_url(url)
                if parsed.drivername == "postgres":
                    parsed = parsed.set(drivername="postgresql+psycopg")
                engine = create_engine(parsed, pool_pre_ping=True)
            except (ArgumentError, ImportError) as exc:
                raise PermanentError(f"invalid database URL: {exc}") from None
            _engines[url] = engine
    return engine


@contextmanager
def db_errors() -> Iterator[None]:
    """Unreachable database → TemporaryError; any other database error → PermanentError."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise TemporaryError(f"database unavailable: {_reason(exc)}") from exc
    except SQLAlchemyError as exc:
        raise PermanentError(f"database error: {_reason(exc)}") from exc


def _reason(exc: SQLAlchemyError) -> str:
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return " ".join(str(cause).split())[:500]


def split_name(name: str) -> tuple[str | None, str]:
    """``"schema.table"`` → (schema, table); ``"table"`` → (None, table)."""
    schema, _, table = name.rpartition(".")
    return (schema or None), table


def existing_table(engine: Engine, name: str) -> Table:
    """The reflected table ``name`` ([schema.]table); PermanentError unless it really exists."""
    schema, table = split_name(name)
    with db_errors():
        inspector = inspect(engine)
        if schema is not None and schema not in inspector.get_schema_names():
            raise PermanentError(f"unknown table {name!r}")
        if table not in inspector.get_table_names(schema=schema):
            raise PermanentError(f"unknown table {name!r}")
        try:
            return Table(table, MetaData(), schema=schema, autoload_with=engine)
        except NoSuchTableError as exc:
            raise PermanentError(f"unknown table {name!r}") from exc


def existing_views(engine: Engine, names: list[str]) -> list[tuple[str | None, str]]:
    """The materialized views ``names``, each checked against the schema."""
    found = []
    with db_errors():
        inspector = inspect(engine)
        for name in names:
            schema, view = split_name(name)
            if schema is not None and schema not in inspector.get_schema_names():
                raise PermanentError(f"unknown materialized view {name!r}")
            if view not in inspector.get_materialized_view_names(schema=schema):
                raise PermanentError(f"unknown materialized view {name!r}")
            found.append((schema, view))
    return found


def quoted(engine: Engine, schema: str | None, name: str) -> str:
    """``name`` (already checked to exist) quoted for this dialect."""
    preparer = engine.dialect.identifier_preparer
    if schema is None:
        return str(preparer.quote(name))
    return f"{preparer.quote_schema(schema)}.{preparer.quote(name)}"
