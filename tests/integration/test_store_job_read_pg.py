"""PostgreSQL: the job read sent through psycopg itself (conveyor.store.sql_job_read) gives
the Job SQLAlchemy's column types give, in any session time zone, and a lost connection
is reported as StoreError once and replaced."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from conveyor.jobs import Job, JobState
from conveyor.store.base import StoreError
from conveyor.store.schema import jobs
from conveyor.store.sql import SqlStore
from tests.integration.test_store_sql import BASE_URL, throwaway_database
from tests.store_contract import make_job

pytestmark = pytest.mark.integration

TOKYO = timezone(timedelta(hours=9))


def _rich_job(job_id: str) -> Job:
    """A job with every column set (JSON, timestamps given in another zone, strings)."""
    at = datetime(2026, 11, 21, 20, 30, 1, 123456, tzinfo=TOKYO)
    return make_job(
        job_id,
        state=JobState.RETRYING,
        args=(1, "two", [3.5, None], {"k": True}),
        kwargs={"to": "ünïcode@example.com", "nested": {"list": [1, 2]}},
        priority=7,
        attempts=2,
        result={"sent": 3, "ids": ["a", "b"]},
        error="boom",
        error_type="ValueError",
        traceback="Traceback ...",
        worker="w1@host",
        created_at=at,
        scheduled_for=at + timedelta(minutes=5),
        started_at=at + timedelta(seconds=1),
        finished_at=None,
        updated_at=at + timedelta(seconds=2),
        callback_url="http://127.0.0.1:9/hook",
        retry={"max_retries": 5, "base_delay": 1.5, "max_delay": 60},
        idempotency_key="idem-1",
        unique_key="u" * 64,
        replay_of="dead-1",
        progress={"done": 1, "total": 4, "message": "a"},
        workflow_id="wf-1",
        rate_limit="5/s",
        reason="retry",
    )


def _through_sqlalchemy(store: SqlStore, job_id: str) -> Job:
    query = select(jobs).where(jobs.c.id == bindparam("b_id"))
    with store.engine.connect() as conn:
        row = conn.execute(query, {"b_id": job_id}).first()
    assert row is not None
    return Job.from_row(dict(row._mapping))


@pytest.fixture(params=["UTC", "Asia/Tokyo"])
def store(request: pytest.FixtureRequest) -> Iterator[SqlStore]:
    with throwaway_database() as url:
        zoned = make_url(url).update_query_dict({"options": f"-c timezone={request.param}"})
        opened = SqlStore(zoned.render_as_string(hide_password=False))
        try:
            opened.migrate()
            yield opened
        finally:
            opened.close()


def test_the_driver_read_gives_what_sqlalchemy_gives(store: SqlStore) -> None:
    job = _rich_job("rich-1")
    store.create_job(job)
    read = store.get_job("rich-1")
    assert read == _through_sqlalchemy(store, "rich-1")
    assert read is not None
    assert read.created_at == job.created_at and read.created_at.tzinfo is UTC
    assert read.scheduled_for is not None and read.scheduled_for.tzinfo is UTC
    assert read.finished_at is None
    assert read.args == job.args and read.kwargs == job.kwargs and read.retry == job.retry
    assert read.state is JobState.RETRYING and read.result == job.result
    assert store.get_job("missing") is None


def test_a_lost_connection_is_reported_once_and_replaced(store: SqlStore) -> None:
    store.create_job(make_job("job-1"))
    assert store.get_job("job-1") is not None  # a pooled connection now exists
    with store.engine.connect() as conn:  # (the same pooled connection: the pool holds one)
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    admin = create_engine(BASE_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid or 0)})")
    admin.dispose()
    failures = 0
    for _ in range(3):  # a connection the server closed fails once, then is replaced
        try:
            assert store.get_job("job-1") is not None
        except StoreError as exc:
            assert "job store error" in str(exc)
            failures += 1
    assert failures <= 1  # (0 when the idle ping found it first)
    assert store.get_job("job-1") is not None
