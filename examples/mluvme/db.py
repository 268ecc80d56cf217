"""The example's engine and sessions, on the job store's database (SQLite or PostgreSQL).

``CONVEYOR_DATABASE_URL`` names it (empty: the SQLite file conveyor uses by
default). ``create_tables`` creates the ``mluvme_*`` tables and the daily
activity view: a real ``MATERIALIZED VIEW`` on PostgreSQL, a plain table that
``refresh_materialized_views`` rebuilds on SQLite (which has no materialized views).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session

from conveyor.settings import Settings, get_settings
from examples.mluvme.models import Base

#: the daily activity summary refreshed hourly by refresh_materialized_views
ACTIVITY_VIEW = "mluvme_daily_activity"
_ACTIVITY_SELECT = {
    "postgresql": (
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS messages, "
        "count(DISTINCT user_id) AS active_users, sum(words) AS words "
        "FROM mluvme_messages GROUP BY 1"
    ),
    "sqlite": (
        "SELECT date(created_at) AS day, count(*) AS messages, "
        "count(DISTINCT user_id) AS active_users, sum(words) AS words "
        "FROM mluvme_messages GROUP BY 1"
    ),
}

_lock = threading.Lock()
_engines: dict[tuple[int, str], Engine] = {}


class DatabaseNotSupported(RuntimeError):
    """The job store is not an SQL database the example can keep its tables in."""


def database_url(settings: Settings | None = None) -> str:
    """The job store's SQLAlchemy URL (PostgreSQL or SQLite)."""
    url = (settings or get_settings()).effective_database_url
    if not url.startswith(("postgresql", "sqlite")):
        raise DatabaseNotSupported(
            f"the mluvme example keeps its tables in the job store's database; {url!r} is "
            "neither PostgreSQL nor SQLite: set CONVEYOR_DATABASE_URL"
        )
    return url


def _sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def engine(settings: Settings | None = None) -> Engine:
    """One engine per process and URL (a forked worker child builds its own)."""
    url = database_url(settings)
    key = (os.getpid(), url)
    with _lock:
        found = _engines.get(key)
        if found is None:
            found = create_engine(url, pool_pre_ping=True)
            if found.dialect.name == "sqlite":
                event.listen(found, "connect", _sqlite_foreign_keys)
            _engines[key] = found
        return found


def dispose_engines() -> None:
    """Close every pooled connection of this process (tests, before dropping a database)."""
    with _lock:
        for key, found in list(_engines.items()):
            if key[0] == os.getpid():
                found.dispose()
            del _engines[key]


@contextmanager
def session(settings: Settings | None = None) -> Iterator[Session]:
    """A session committed when the block ends normally, rolled back otherwise."""
    with Session(engine(settings), expire_on_commit=False) as db, db.begin():
        yield db


def create_tables(settings: Settings | None = None) -> None:
    """Create the ``mluvme_*`` tables and the activity view if missing (idempotent)."""
    url = make_url(database_url(settings))
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # e.g. a fresh ./var
    eng = engine(settings)
    Base.metadata.create_all(eng)
    dialect = eng.dialect.name
    select = _ACTIVITY_SELECT[dialect]
    with eng.begin() as conn:
        if dialect == "postgresql":
            conn.execute(
                text(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {ACTIVITY_VIEW} AS {select}")
            )
            # a unique index lets REFRESH ... CONCURRENTLY keep the view readable meanwhile
            index = f"CREATE UNIQUE INDEX IF NOT EXISTS {ACTIVITY_VIEW}_day"
            conn.execute(text(f"{index} ON {ACTIVITY_VIEW} (day)"))
        else:
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {ACTIVITY_VIEW} (day DATE PRIMARY KEY, "
                    "messages INTEGER NOT NULL, active_users INTEGER NOT NULL, words INTEGER)"
                )
            )


def refresh_activity_view(db: Session) -> str:
    """Rebuild the activity view; returns how (``materialized view`` or ``table rebuild``)."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        db.execute(text(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {ACTIVITY_VIEW}"))
        return "materialized view"
    db.execute(text(f"DELETE FROM {ACTIVITY_VIEW}"))
    db.execute(text(f"INSERT INTO {ACTIVITY_VIEW} {_ACTIVITY_SELECT[dialect]}"))
    return "table rebuild"


def analyze(db: Session) -> list[str]:
    """``ANALYZE`` every example table (PostgreSQL and SQLite both have it); their names."""
    tables = [*sorted(Base.metadata.tables), ACTIVITY_VIEW]
    for table in tables:
        db.execute(text(f"ANALYZE {table}"))
    if db.get_bind().dialect.name == "sqlite":
        db.execute(text("PRAGMA optimize"))
    return tables
