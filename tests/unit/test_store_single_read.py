"""The cancel gate's job read (``get_job``) runs outside a transaction: no BEGIN, no COMMIT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from conveyor.store.sql import SqlStore
from tests.store_contract import make_job


def test_get_job_runs_its_one_statement_in_autocommit(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    job = make_job("job-1")
    store.create_job(job)
    seen: list[tuple[str, Any]] = []

    def note(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(
            (statement.split(maxsplit=1)[0], conn.connection.dbapi_connection.isolation_level)
        )

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        assert store.get_job("job-1") == job
        assert store.get_job("missing") is None
    finally:
        event.remove(store.engine, "before_cursor_execute", note)
        store.close()
    assert seen == [("SELECT", None), ("SELECT", None)]  # None: sqlite3's autocommit


def test_a_write_after_a_single_read_is_still_transactional(tmp_path: Path) -> None:
    """The pooled connection goes back to transactional mode after the read."""
    store = SqlStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    store.create_job(make_job("job-1"))
    store.get_job("job-1")
    levels: list[Any] = []

    def note(conn: Any, *_: Any) -> None:
        levels.append(conn.connection.dbapi_connection.isolation_level)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        store.delete_job("job-1")
    finally:
        event.remove(store.engine, "before_cursor_execute", note)
        store.close()
    assert levels and None not in levels
