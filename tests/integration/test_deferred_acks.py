"""A prefork or threads worker on Redis acks a message only once the job store holds its run.

The task does not wait for the store (conveyor/acks.py): the recorder writes many runs in
one transaction and tells the main process, which then acknowledges. Proven
here by holding PostgreSQL's jobs table locked against writes: the task runs, but its
message stays unacknowledged in Redis until the lock goes and the run is stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from conveyor.jobs import JobState
from conveyor.submit import SubmitRequest
from tests.support.services import REDIS_URL, flush_redis, fresh_postgres_database
from tests.support.stack import Client, Stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

DB = 8
JOBS = 300


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def _stack(tmp_path: Path, pg_url: str) -> Stack:
    flush_redis(DB)
    (tmp_path / "var").mkdir()
    stack = Stack(
        tmp_path / "var",
        overrides={"CONVEYOR_BROKER_URL": f"{REDIS_URL}/{DB}", "CONVEYOR_DATABASE_URL": pg_url},
    )
    assert stack.conveyor("migrate").returncode == 0
    return stack


def _unacked(client: redis.Redis) -> int:
    return int(client.hlen("unacked"))


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_ack_waits_for_the_record(tmp_path: Path, pg_url: str, pool: str) -> None:
    stack = _stack(tmp_path, pg_url)
    broker = redis.Redis.from_url(f"{REDIS_URL}/{DB}")
    marks = tmp_path / "marks"
    marks.mkdir()
    client = Client(stack)
    job = client.submitter.submit(SubmitRequest("tests.mark", kwargs={"marker_dir": str(marks)}))
    plain = psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        plain.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")  # reads pass, writes wait
        stack.start("worker", "-P", pool, "-c", "2", log_name="worker")
        wait_until((marks / job.id).exists, 30, "the task to run")
        time.sleep(1.0)  # the recorder's write is blocked: the ack must not have gone out
        assert _unacked(broker) == 1, stack.logs()[-2000:]
        assert client.store.get_job(job.id).state is JobState.QUEUED  # type: ignore[union-attr]
        plain.rollback()  # the lock goes: the run is stored, then acknowledged
        done = client.wait(job.id)
        assert done.state is JobState.SUCCEEDED
        wait_until(lambda: _unacked(broker) == 0, 10, "the ack after the record")
        assert "acks_deferred" in stack.logs()
    finally:
        plain.close()
        client.close()
        stack.stop_all()


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_every_message_is_acked_once_recorded(tmp_path: Path, pg_url: str, pool: str) -> None:
    stack = _stack(tmp_path, pg_url)
    broker = redis.Redis.from_url(f"{REDIS_URL}/{DB}")
    client = Client(stack)
    ids = [client.submit("tests.echo", str(i)).id for i in range(JOBS)]
    stack.start("worker", "-P", pool, "-c", "2", log_name="worker")
    try:
        for job_id in ids:
            assert client.wait(job_id).state is JobState.SUCCEEDED
        wait_until(lambda: _unacked(broker) == 0, 10, "every ack")
        assert broker.llen("default") == 0
        assert "record_ack_timeout" not in stack.logs()
    finally:
        client.close()
        stack.stop_all()
