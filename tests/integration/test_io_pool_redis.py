"""I/O pool workers on a Redis broker acknowledge a hundred jobs at once without running
out of broker connections (kombu's default: 10 per channel -> MaxConnectionsError, the
acks fail and the worker stalls after about 100 jobs)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conveyor.jobs import JobState
from conveyor.submit import SubmitRequest
from tests.support.services import REDIS_URL, flush_redis
from tests.support.stack import Client, Stack

pytestmark = pytest.mark.integration

DB = 7
JOBS = 400


@pytest.mark.parametrize("pool", ["threads", "gevent"])
def test_hundred_slots_ack_every_job(tmp_path: Path, pool: str) -> None:
    if pool == "gevent":
        pytest.importorskip("gevent")
    flush_redis(DB)
    (tmp_path / "var").mkdir()
    stack = Stack(tmp_path / "var", overrides={"CONVEYOR_BROKER_URL": f"{REDIS_URL}/{DB}"})
    assert stack.conveyor("migrate").returncode == 0
    client = Client(stack)
    stack.overrides = {**stack.overrides, "CONVEYOR_QUEUE_POOLS": f'{{"notifications": "{pool}"}}'}
    request = SubmitRequest("tests.green_sleeps", kwargs={"seconds": 0.05}, queue="notifications")
    jobs = [client.submitter.submit(request) for _ in range(JOBS)]
    stack.start("worker", "-Q", "notifications", log_name="worker")
    try:
        deadline = time.monotonic() + 90
        ids = [job.id for job in jobs]
        while time.monotonic() < deadline:
            states = [client.store.get_job(i).state for i in ids]  # type: ignore[union-attr]
            if all(s.is_final for s in states):
                break
            time.sleep(0.5)
    finally:
        client.close()
        stack.stop_all()
    logs = stack.logs()
    assert f"concurrency: 100 ({'thread' if pool == 'threads' else pool})" in logs
    succeeded = states.count(JobState.SUCCEEDED)
    assert succeeded == JOBS, (succeeded, logs[-3000:])
    assert "Too many connections" not in logs
