"""What the workloads need from a queue, whatever the queue."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata

from bench.suite.probe import URL_ENV
from bench.suite.procs import ROOT

#: the pools (variants) of the I/O workload and the sizes used for every queue
PREFORK, THREADS, ASYNC = "prefork", "threads", "gevent / asyncio"
POOLS = (PREFORK, THREADS, ASYNC)
PROCESSES = 2  # the machine's cores
THREADS_PER_WORKER = 16
GREENLETS = 100

#: the task names every queue's worker module defines
NOOP, SLEEP, STAMP, DELAYED = "noop", "sleep", "stamp", "delayed"


@dataclass
class Context:
    """Where the benchmark runs: its Redis database (flushed before each run) and SQL store."""

    redis_url: str
    database_url: str
    data_dir: str
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                URL_ENV: self.redis_url,
                "BENCH_BROKER_URL": self.redis_url,
                **self.extra_env,
            }
        )
        return env


def version(*packages: str) -> str:
    return ", ".join(f"{p} {metadata.version(p)}" for p in packages)


def python_tool(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def script(name: str) -> str:
    """A console script installed next to this interpreter."""
    return os.path.join(os.path.dirname(sys.executable), name)


class Adapter:
    """Base of the queue drivers. ``pools`` maps each I/O variant to None (supported) or
    the reason it is not available; the no-op, latency and delay workloads use
    ``default_pool``."""

    name = ""
    default_pool = PREFORK
    pools: dict[str, str | None] = {}
    #: why the long-delay workload cannot run on this queue ("" when it can)
    delays_na = ""
    #: a queue for I/O-bound jobs whose workers pick their pool themselves ("": none)
    io_queue = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def version(self) -> str:
        raise NotImplementedError

    def flags(self) -> str:
        raise NotImplementedError

    def prepare(self) -> None:
        """Before each run, after the Redis database was flushed."""

    def env(self, pool: str | None = None) -> dict[str, str]:
        """The environment of the worker processes (``pool`` None: the default workers)."""
        return self.ctx.env()

    def worker_commands(self, pool: str) -> list[list[str]]:
        raise NotImplementedError

    def default_commands(self) -> list[list[str]]:
        """The workers of the no-op and latency workloads (the queue's usual setup)."""
        return self.worker_commands(self.default_pool)

    def delay_commands(self) -> list[list[str]]:
        """The processes of the long-delay workload (workers, and a scheduler if needed)."""
        return self.default_commands()

    def io_queue_commands(self) -> list[list[str]]:
        """The workers of ``io_queue``, started without naming a pool."""
        raise NotImplementedError

    def io_queue_pool(self) -> str:
        """The pool (and size) the workers of ``io_queue`` pick, for the report."""
        raise NotImplementedError

    @contextmanager
    def sending_to(self, queue: str) -> Iterator[None]:
        """Within the block, jobs are sent to ``queue`` instead of their task's own."""
        raise NotImplementedError
        yield

    def enqueue(self, task: str, args: tuple[object, ...]) -> None:
        """Send one job, the way an application does (one producer, one call per job)."""
        raise NotImplementedError

    def enqueue_many(self, task: str, argsets: list[tuple[object, ...]]) -> None:
        for args in argsets:
            self.enqueue(task, args)

    def enqueue_bulk(self, task: str, argsets: list[tuple[object, ...]]) -> None:
        """Send many jobs as fast as the queue allows (the memory workload's producer)."""
        self.enqueue_many(task, argsets)

    def enqueue_at(self, task: str, argsets: list[tuple[object, ...]], due: float) -> None:
        """Send jobs to run at ``due`` (epoch seconds)."""
        raise NotImplementedError

    def close(self) -> None:
        """After the run."""
