"""PostgreSQL: reads made on hot paths are one statement in autocommit (no BEGIN/COMMIT).

The cancel gate reads every job before it runs; the scheduler asks when the next held
job is due on every pass.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from conveyor.jobs import JobState
from conveyor.store.sql import SqlStore
from tests.integration.test_store_sql import throwaway_database
from tests.store_contract import make_job

pytestmark = pytest.mark.integration


def test_get_job_sends_no_begin_or_commit() -> None:
    with throwaway_database() as url:
        store = SqlStore(url)
        try:
            store.migrate()
            job = make_job("job-1")
            store.create_job(job)
            autocommit: list[bool] = []

            def note(conn: Any, *_: Any) -> None:
                autocommit.append(conn.connection.dbapi_connection.autocommit)

            event.listen(store.engine, "before_cursor_execute", note)
            assert store.get_job("job-1") == job
            event.remove(store.engine, "before_cursor_execute", note)
            assert autocommit == [True]
            with store.engine.connect() as conn:  # back in the pool as it was
                assert conn.connection.dbapi_connection.autocommit is False
            store.delete_job("job-1")  # writes stay transactional
            assert store.get_job("job-1") is None
        finally:
            store.close()


def test_next_due_at_sends_no_begin_or_commit() -> None:
    with throwaway_database() as url:
        store = SqlStore(url)
        try:
            store.migrate()
            job = make_job(
                "held-1", state=JobState.SCHEDULED, scheduled_for=datetime(2030, 1, 1, tzinfo=UTC)
            )
            store.create_job(job)
            statements: list[tuple[str, bool]] = []

            def note(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
                statements.append((statement, conn.connection.dbapi_connection.autocommit))

            event.listen(store.engine, "before_cursor_execute", note)
            assert store.next_due_at() == job.scheduled_for
            event.remove(store.engine, "before_cursor_execute", note)
            assert len(statements) == 1
            assert statements[0][1] is True  # autocommit: psycopg sends no BEGIN/COMMIT
        finally:
            store.close()
