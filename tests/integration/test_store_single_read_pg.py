"""PostgreSQL: the cancel gate's job read is one statement in autocommit (2 round trips, not 4)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

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
