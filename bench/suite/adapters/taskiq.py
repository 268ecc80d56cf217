"""Taskiq with taskiq-redis's ListQueueBroker: `taskiq worker` (2 processes, async tasks)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from bench.suite.adapters.base import (
    ASYNC,
    GREENLETS,
    PREFORK,
    PROCESSES,
    THREADS,
    Adapter,
    Context,
    script,
    version,
)

MODULE = "bench.suite.workers.taskiq_tasks"
ASYNC_ONLY = "Taskiq runs async tasks on an event loop only (reported under gevent / asyncio)"


class TaskiqAdapter(Adapter):
    name = "taskiq"
    default_pool = ASYNC
    pools = {PREFORK: ASYNC_ONLY, THREADS: ASYNC_ONLY, ASYNC: None}
    delays_na = "delayed tasks need a separate `taskiq scheduler` with a schedule source"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        os.environ["BENCH_BROKER_URL"] = ctx.redis_url
        self.module: Any = __import__(MODULE, fromlist=["broker"])
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.module.broker.startup())

    def version(self) -> str:
        return version("taskiq", "taskiq-redis")

    def flags(self) -> str:
        return (
            "`taskiq worker --workers 2` (its defaults: 100 async tasks per process); "
            "I/O: `--max-async-tasks 50`; async def tasks"
        )

    def _command(self, extra: list[str]) -> list[list[str]]:
        return [[script("taskiq"), "worker", f"{MODULE}:broker", "--workers", str(PROCESSES),
                 "--log-level", "WARNING", *extra]]  # fmt: skip

    def worker_commands(self, pool: str) -> list[list[str]]:
        return self._command(["--max-async-tasks", str(GREENLETS // PROCESSES)])

    def default_commands(self) -> list[list[str]]:
        return self._command([])

    def delay_commands(self) -> list[list[str]]:
        return []

    def enqueue(self, task: str, args: tuple[object, ...]) -> None:
        self.loop.run_until_complete(getattr(self.module, task).kiq(*args))

    def close(self) -> None:
        self.loop.run_until_complete(self.module.broker.shutdown())
        self.loop.close()
