"""PostgreSQL: reads made on hot paths are one statement in autocommit (no BEGIN/COMMIT).

The cancel gate reads every job before it runs; the scheduler asks when the next held
job is due on every pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from conveyor.jobs import JobState
from conveyor.store.sql import SqlStore
from tests.integration.test_store_sql import migrated_store
from tests.store_contract import make_job

pytestmark = pytest.mark.integration


@pytest.fixture
def store() -> Iterator[SqlStore]:
    with migrated_store() as opened:
        yield opened


@contextmanager
def _autocommit_of_each_statement(store: SqlStore) -> Iterator[list[bool]]:
    """Whether each statement sent inside the block ran in autocommit."""
    seen: list[bool] = []

    def note(conn: Any, *_: Any) -> None:
        seen.append(conn.connection.dbapi_connection.autocommit)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", note)


@contextmanager
def _driver_statements() -> Iterator[list[tuple[bool, str]]]:
    """(autocommit, SQL) of each statement sent through psycopg's ``Connection.execute``
    (the job read goes to the driver itself: conveyor.store.sql_job_read)."""
    seen: list[tuple[bool, str]] = []
    original = psycopg.Connection.execute

    def execute(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((self.autocommit, str(query)))
        return original(self, query, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg.Connection, "execute", execute)
        yield seen


def test_get_job_sends_no_begin_or_commit(store: SqlStore) -> None:
    job = make_job("job-1")
    store.create_job(job)
    with _autocommit_of_each_statement(store) as autocommit, _driver_statements() as sent:
        assert store.get_job("job-1") == job
    assert autocommit == []  # nothing through SQLAlchemy's cursor
    assert [(auto, sql.split()[0]) for auto, sql in sent] == [(True, "SELECT")]
    with store.engine.connect() as conn:  # back in the pool as it was
        assert conn.connection.dbapi_connection.autocommit is False
    store.delete_job("job-1")  # writes stay transactional
    assert store.get_job("job-1") is None


def test_next_due_at_sends_no_begin_or_commit(store: SqlStore) -> None:
    job = make_job(
        "held-1", state=JobState.SCHEDULED, scheduled_for=datetime(2030, 1, 1, tzinfo=UTC)
    )
    store.create_job(job)
    with _autocommit_of_each_statement(store) as autocommit:
        assert store.next_due_at() == job.scheduled_for
    assert autocommit == [True]  # one statement, and psycopg sent no BEGIN/COMMIT
