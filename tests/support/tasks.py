"""Tasks the test suite submits to real workers (imported via CONVEYOR_IMPORTS)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from conveyor.context import current_job, progress
from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task


@task(name="tests.echo")
def echo(value: str, times: int = 1) -> dict[str, object]:
    """Return the value repeated."""
    return {"value": value * times}


@task(name="tests.async_add")
async def async_add(x: int, y: int) -> int:
    await asyncio.sleep(0.01)
    return x + y


@task(name="tests.fail")
def fail(message: str) -> None:
    raise PermanentError(message)


@task(name="tests.flaky", retry=RetryPolicy(max_retries=3, base_delay=0.1, jitter=False))
def flaky(counter_file: str, succeed_on: int) -> int:
    """Fail with a TemporaryError until attempt ``succeed_on``; counts runs in a file."""
    path = Path(counter_file)
    with path.open("a") as fh:
        fh.write("x")
    runs = len(path.read_text())
    job = current_job()
    attempt = job.attempt if job else 0
    if runs < succeed_on:
        raise TemporaryError(f"run {runs} fails")
    return attempt


@task(name="tests.sleep")
def sleep(seconds: float, marker_dir: str | None = None) -> float:
    time.sleep(seconds)
    if marker_dir:
        job = current_job()
        name = job.job_id if job else str(os.getpid())
        with (Path(marker_dir) / name).open("a") as fh:
            fh.write("x")
    return seconds


@task(name="tests.add")
def add(x: int, y: int = 0) -> int:
    return x + y


@task(name="tests.total")
def total(values: list[int]) -> int:
    return sum(values)


@task(name="tests.record_error")
def record_error(info: dict[str, object], marker: str = "") -> dict[str, object]:
    """An error callback: returns what it received."""
    return {"received": info, "marker": marker}


@task(name="tests.progress")
def report_progress(steps: int, pause: float = 0.0) -> int:
    for done in range(1, steps + 1):
        time.sleep(pause)
        progress(done, steps, f"step {done}")
    return steps
