"""`conveyor worker -P gevent` patches the standard library first and runs I/O-bound jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.jobs import JobState
from tests.support.stack import Stack, running

pytestmark = pytest.mark.acceptance
pytest.importorskip("gevent")


@pytest.mark.parametrize("how", ["option", "setting"])
def test_gevent_worker_runs_sleeping_jobs_concurrently(tmp_path: Path, how: str) -> None:
    (tmp_path / "var").mkdir()
    stack = Stack(tmp_path / "var")
    if how == "option":
        args: tuple[str, ...] = ("-P", "gevent", "-c", "20")
    else:
        stack.overrides = {"CONVEYOR_WORKER_POOL": "gevent"}
        args = ("-c", "20")
    with running(stack, *args) as client:
        jobs = [client.submit("tests.green_sleeps", seconds=1.0) for _ in range(10)]
        done = [client.wait(job.id, timeout=90) for job in jobs]
    assert [j.state for j in done] == [JobState.SUCCEEDED] * 10, stack.logs()
    assert all(j.result == {"socket_patched": True} for j in done), [j.result for j in done]
    # ten 1-second sleeps on one green worker overlap: far less than 10 s from first to last
    starts = sorted(j.started_at for j in done if j.started_at)
    ends = sorted(j.finished_at for j in done if j.finished_at)
    assert (ends[-1] - starts[0]).total_seconds() < 8, (starts, ends)
