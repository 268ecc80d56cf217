"""Dramatiq on its Redis broker: `dramatiq -p 2 -t 8` (its defaults on 2 cores)."""

from __future__ import annotations

import os
import time
from typing import Any

from bench.suite.adapters.base import (
    ASYNC,
    GREENLETS,
    PREFORK,
    PROCESSES,
    THREADS,
    THREADS_PER_WORKER,
    Adapter,
    Context,
    script,
    version,
)

MODULE = "bench.suite.workers.dramatiq_tasks"
POOL_ARGS = {
    PREFORK: ("dramatiq", ["-p", str(PROCESSES), "-t", "1"]),
    THREADS: ("dramatiq", ["-p", str(PROCESSES), "-t", str(THREADS_PER_WORKER // PROCESSES)]),
    ASYNC: ("dramatiq-gevent", ["-p", str(PROCESSES), "-t", str(GREENLETS // PROCESSES)]),
}
DEFAULT_ARGS = ("dramatiq", ["-p", str(PROCESSES), "-t", "8"])


class DramatiqAdapter(Adapter):
    name = "dramatiq"
    pools = dict.fromkeys(POOL_ARGS)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        os.environ["BENCH_BROKER_URL"] = ctx.redis_url
        self.module: Any = __import__(MODULE, fromlist=["noop"])

    def version(self) -> str:
        return version("dramatiq")

    def flags(self) -> str:
        return (
            "`dramatiq -p 2 -t 8` (its default threads); I/O pools: `-p 2 -t 1`, `-p 2 -t 8`, "
            "`dramatiq-gevent -p 2 -t 50`; default middleware, max_retries=0; delays: "
            "`send_with_options(delay=)`"
        )

    def _command(self, pool: str | None) -> list[list[str]]:
        tool, args = POOL_ARGS[pool] if pool else DEFAULT_ARGS
        return [[script(tool), MODULE, *args]]

    def worker_commands(self, pool: str) -> list[list[str]]:
        return self._command(pool)

    def default_commands(self) -> list[list[str]]:
        return self._command(None)

    def enqueue(self, task: str, args: tuple[object, ...]) -> None:
        getattr(self.module, task).send(*args)

    def enqueue_at(self, task: str, argsets: list[tuple[object, ...]], due: float) -> None:
        actor = getattr(self.module, task)
        for args in argsets:
            delay = max(0, int((due - time.time()) * 1000))
            actor.send_with_options(args=args, delay=delay)
