"""Tasks the test suite submits to real workers (imported via CONVEYOR_IMPORTS)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from conveyor.context import current_job, progress
from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.concurrency import ConcurrencyLimit
from conveyor.policies.ratelimit import Limit
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


# -- reliability (issue 3) -------------------------------------------------------
@task(name="tests.fragile", retry=RetryPolicy(max_retries=2, base_delay=0.05, jitter=False))
def fragile(should_fail: bool, marker_dir: str | None = None) -> str:
    """Fail with a TemporaryError while ``should_fail``; 3 attempts, then DEAD."""
    if marker_dir:
        job = current_job()
        with (Path(marker_dir) / (job.job_id if job else "none")).open("a") as fh:
            fh.write("x")
    if should_fail:
        raise TemporaryError("still broken")
    return "fixed"


@task(name="tests.mark")
def mark(marker_dir: str, seconds: float = 0.0) -> int:
    """Append one ``x`` to a file named after the job (each run is observable)."""
    if seconds:
        time.sleep(seconds)
    job = current_job()
    with (Path(marker_dir) / (job.job_id if job else "none")).open("a") as fh:
        fh.write("x")
    return job.attempt if job else 0


@task(
    name="tests.overtime",
    time_limit=1.0,
    retry=RetryPolicy(max_retries=1, base_delay=0.05, jitter=False),
)
def overtime(seconds: float) -> None:
    """Stuck past its hard time limit (1 s) like code that ignores signals: the worker kills it.

    SIGUSR1 (soft limit) and SIGTERM are blocked, so only the hard limit's SIGKILL ends it.
    """
    blocked = {signal.SIGUSR1, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        time.sleep(seconds)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@task(name="tests.unique_sleep", unique=True, unique_on=("key",))
def unique_sleep(key: str, seconds: float = 0.0) -> str:
    time.sleep(seconds)
    return key


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


# -- flow control (issue 4) ------------------------------------------------------
@task(name="tests.limited", rate_limit="5/s")
def limited(n: int) -> float:
    """Rate-limited to 5/s across the cluster; returns when it started (epoch s)."""
    return time.time()


@task(name="tests.shared_a", rate_limit=Limit("tests-shared", "4/s"))
def shared_a(n: int) -> float:
    return time.time()


@task(name="tests.shared_b", rate_limit=Limit("tests-shared", "4/s"))
def shared_b(n: int) -> float:
    return time.time()


@task(name="tests.unlimited")
def unlimited(n: int) -> float:
    return time.time()


@task(name="tests.per_user", concurrency=ConcurrencyLimit(key="user_id", limit=1))
def per_user(user_id: int, seconds: float) -> list[float]:
    """At most one run per user at a time; returns [start, end] (epoch s)."""
    start = time.time()
    time.sleep(seconds)
    return [start, time.time()]


@task(name="tests.green_sleeps")
def green_sleeps(seconds: float = 0.2) -> dict[str, object]:
    """Whether this worker runs on a patched (green) standard library, after a short sleep."""
    import socket  # noqa: PLC0415
    import time  # noqa: PLC0415

    time.sleep(seconds)
    return {"socket_patched": "gevent" in type(socket.socket).__module__ + socket.socket.__module__}
