"""What the workloads share: a run's workers, waiting for jobs, warming up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.suite.adapters.base import STAMP, Adapter
from bench.suite.probe import Reader
from bench.suite.procs import Group


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does (issue #11's figures in the full profile)."""

    noop_jobs: int = 20_000
    latency_jobs: int = 300
    io_jobs: int = 2_000
    api_rate: int = 200
    api_seconds: float = 10.0
    api_batches: int = 20
    delayed_jobs: int = 10_000
    #: spare seconds between the estimated end of enqueueing the delayed jobs and their due time
    delay_lead: float = 5.0
    #: longest a drain may take before it is stopped and its partial rate reported
    drain_cap: float = 8.0
    #: longest the single producer enqueues before the rest of the jobs are dropped
    enqueue_cap: float = 8.0
    #: longest the workers may take to start the first job
    start_cap: float = 20.0
    #: longest the latency workload sends jobs (a queue that polls slowly sends fewer)
    latency_cap: float = 20.0
    #: jobs of the memory workload, sent while the worker drains them
    memory_jobs: int = 100_000
    #: longest the memory workload runs per queue (conveyor and plain Celery only)
    memory_cap: float = 60.0


@contextmanager
def workers(commands: list[list[str]], env: dict[str, str], label: str) -> Iterator[Group]:
    group = Group(commands, env, label)
    try:
        yield group
    finally:
        group.stop()


def wait_for(reader: Reader, count: int, deadline: float, group: Group) -> int:
    """Wait until ``count`` jobs are done (or the deadline, or a worker died); done so far."""
    done = reader.done()
    while done < count and time.time() < deadline and group.alive():
        time.sleep(0.2)
        done = reader.done()
    return done


def warm_up(adapter: Adapter, reader: Reader, jobs: int = 3, timeout: float = 90.0) -> bool:
    """Send ``jobs`` stamp jobs one by one and wait for each: the workers are up and idle."""
    for n in range(jobs):
        adapter.enqueue(STAMP, (time.time(),))
        if reader.next_latency(timeout if n == 0 else 15) is None:
            return False
    return True


def enqueue_capped(adapter: Adapter, task: str, args: tuple[object, ...], count: int,
                   cap: float) -> tuple[int, float]:  # fmt: skip
    """Enqueue up to ``count`` jobs one call each, for at most ``cap`` seconds: (sent, s)."""
    began = time.perf_counter()
    sent = 0
    while sent < count:
        adapter.enqueue(task, args)
        sent += 1
        if time.perf_counter() - began > cap:
            break
    return sent, time.perf_counter() - began
