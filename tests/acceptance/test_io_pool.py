"""`conveyor worker -Q notifications` (no -P) runs on the I/O pool: 100 threads.

gevent chosen per queue (CONVEYOR_QUEUE_POOLS) runs on the embedded default (SQLite job
store) and on PostgreSQL (psycopg 3 under gevent's patches), also when the choice is
only in conveyor.toml (the worker restarts itself with -P gevent, patches first).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conveyor.jobs import Job, JobState
from conveyor.submit import SubmitRequest
from tests.support.services import fresh_postgres_database
from tests.support.stack import Client, Stack

pytestmark = pytest.mark.acceptance
pytest.importorskip("gevent")

JOBS = 20


@contextmanager
def worker(stack: Stack, *args: str, env: dict[str, str] | None = None) -> Iterator[Client]:
    """A worker started with ``args``; ``env``: settings of the worker only (environment)."""
    result = stack.conveyor("migrate")
    assert result.returncode == 0, result.stderr
    client = Client(stack)
    stack.overrides = {**stack.overrides, **(env or {})}
    stack.start("worker", *args, log_name="worker")
    try:
        yield client
    finally:
        client.close()
        stack.stop_all()


def _sleeps(client: Client, queue: str) -> list[Job]:
    request = SubmitRequest("tests.green_sleeps", kwargs={"seconds": 1.0}, queue=queue)
    jobs = [client.submitter.submit(request) for _ in range(JOBS)]
    return [client.wait(job.id, timeout=90) for job in jobs]


def _assert_concurrent(done: list[Job], stack: Stack, *, green: bool) -> None:
    assert [j.state for j in done] == [JobState.SUCCEEDED] * JOBS, stack.logs()
    assert all(j.result == {"socket_patched": green} for j in done), [j.result for j in done]
    # twenty 1-second sleeps overlap on one worker: prefork (2 CPUs) would need 10 s
    starts = sorted(j.started_at for j in done if j.started_at)
    ends = sorted(j.finished_at for j in done if j.finished_at)
    assert (ends[-1] - starts[0]).total_seconds() < 6, (starts, ends)


GEVENT_IO = {"CONVEYOR_QUEUE_POOLS": '{"email": "gevent", "notifications": "gevent"}'}


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    (tmp_path / "var").mkdir()
    return Stack(tmp_path / "var")


def test_notifications_worker_runs_on_100_threads(stack: Stack) -> None:
    with worker(stack, "-Q", "notifications") as client:
        done = _sleeps(client, "notifications")
    _assert_concurrent(done, stack, green=False)
    assert "concurrency: 100 (thread)" in stack.logs()


def test_gevent_per_queue_with_the_embedded_store(stack: Stack) -> None:
    with worker(stack, "-Q", "notifications", env=GEVENT_IO) as client:
        done = _sleeps(client, "notifications")
    _assert_concurrent(done, stack, green=True)
    assert "concurrency: 100 (gevent)" in stack.logs()


def test_gevent_per_queue_with_postgresql(stack: Stack) -> None:
    with fresh_postgres_database() as url:
        stack.overrides = {"CONVEYOR_DATABASE_URL": url}
        with worker(stack, "-Q", "email,notifications", env=GEVENT_IO) as client:
            done = _sleeps(client, "email")
        _assert_concurrent(done, stack, green=True)


def test_queue_pools_from_the_config_file(stack: Stack) -> None:
    # the environment does not say it: the worker finds gevent in conveyor.toml and
    # starts itself again with -P gevent, so that the patches come first
    (stack.data_dir / "none.toml").write_text('[queue_pools]\nanalytics = "gevent"\n')
    with worker(stack, "-Q", "analytics") as client:
        done = _sleeps(client, "analytics")
    _assert_concurrent(done, stack, green=True)
    assert "worker_restarted_for_pool" in stack.logs()


def test_a_named_pool_wins(stack: Stack) -> None:
    with worker(stack, "-Q", "notifications", "-P", "prefork", "-c", "2") as client:
        began = time.monotonic()
        done = _sleeps(client, "notifications")
    assert [j.state for j in done] == [JobState.SUCCEEDED] * JOBS, stack.logs()
    assert all(j.result == {"socket_patched": False} for j in done)
    assert time.monotonic() - began >= JOBS / 2 * 1.0 * 0.9  # two at a time
