"""PostgreSQL: the hot writes' statement counts do not grow with their size.

``apply_events`` sends the same few statements for a batch of 1 job as for 60, and
``create_job`` is one statement in autocommit (no BEGIN/COMMIT round trips).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from conveyor.jobs import JobEvent, JobState
from conveyor.store.base import DuplicateJob, StoreError
from conveyor.store.observability import EventFilter
from conveyor.store.sql import SqlStore
from tests.integration.test_store_sql import migrated_store
from tests.store_contract import make_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store() -> Iterator[SqlStore]:
    with migrated_store() as opened:
        yield opened


@pytest.fixture
def statements(store: SqlStore) -> Iterator[list[bool]]:
    """One entry per statement sent: whether its connection was in autocommit."""
    sent: list[bool] = []

    def note(conn: Any, *_: Any) -> None:
        sent.append(conn.connection.dbapi_connection.autocommit)

    event.listen(store.engine, "before_cursor_execute", note)
    yield sent
    event.remove(store.engine, "before_cursor_execute", note)


def _run(store: SqlStore, prefix: str, jobs: int, statements: list[bool]) -> int:
    ids = [f"{prefix}-{n}" for n in range(jobs)]
    for job_id in ids:
        store.create_job(make_job(job_id))
    statements.clear()
    batch = []
    for job_id in ids:
        batch.append(JobEvent(job_id, JobState.STARTED, attempt=1, worker="w"))
        batch.append(JobEvent(job_id, JobState.SUCCEEDED, attempt=1, result={"id": job_id}))
    assert store.apply_events(batch) == 2 * jobs
    return len(statements)


def test_a_batch_costs_the_same_statements_for_1_and_60_jobs(
    store: SqlStore, statements: list[bool]
) -> None:
    one = _run(store, "one", 1, statements)
    many = _run(store, "many", 60, statements)
    assert one == many == 3  # STARTED wave, SUCCEEDED wave, history rows


def test_create_job_is_one_statement_in_autocommit(store: SqlStore, statements: list[bool]) -> None:
    job = make_job("single", kwargs={"to": "ü"}, retry={"max_retries": 2})
    store.create_job(job)
    assert statements == [True]
    assert store.get_job("single") == job
    (created,) = store.list_job_events(0, EventFilter(job_id="single"), 10)
    assert (created.task, created.queue, created.state) == (job.task, job.queue, JobState.QUEUED)
    assert (created.at, created.data) == (job.created_at, {"attempt": 0})


def test_create_job_conflicts_leave_no_history_row(store: SqlStore) -> None:
    store.create_job(make_job("dup"))
    with pytest.raises(DuplicateJob):
        store.create_job(make_job("dup", task="other"))
    store.create_job(make_job("keyed", idempotency_key="k1"))
    with pytest.raises(DuplicateJob):
        store.create_job(make_job("keyed-2", idempotency_key="k1"))
    with pytest.raises(StoreError):
        store.create_job(make_job("bad", kwargs={"x": object()}))
    assert store.get_job("keyed-2") is None and store.get_job("bad") is None
    for job_id, rows in (("dup", 1), ("keyed", 1), ("keyed-2", 0), ("bad", 0)):
        assert len(store.list_job_events(0, EventFilter(job_id=job_id), 10)) == rows
