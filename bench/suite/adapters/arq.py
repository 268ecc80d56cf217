"""arq: two `arq WorkerSettings` processes (async functions, its defaults: 10 jobs each)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
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

MODULE = "bench.suite.workers.arq_tasks"
MAX_JOBS_ENV = "BENCH_ARQ_MAX_JOBS"
ASYNC_ONLY = "arq runs async functions on an event loop only (reported under gevent / asyncio)"


class ArqAdapter(Adapter):
    name = "arq"
    default_pool = ASYNC
    pools = {PREFORK: ASYNC_ONLY, THREADS: ASYNC_ONLY, ASYNC: None}

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        os.environ["BENCH_BROKER_URL"] = ctx.redis_url
        module: Any = __import__(MODULE, fromlist=["REDIS"])
        arq_connections: Any = __import__("arq.connections", fromlist=["create_pool"])
        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(arq_connections.create_pool(module.REDIS))

    def version(self) -> str:
        return version("arq")

    def flags(self) -> str:
        return (
            "2 x `arq WorkerSettings` (its default max_jobs 10); I/O: max_jobs 50 each; "
            "delays: `_defer_until`. Installed with --no-deps: arq pins redis<6, "
            "Celery 5.7 needs redis>=6 (it ran on redis-py 8)"
        )

    def env(self, pool: str | None = None) -> dict[str, str]:
        env = self.ctx.env()
        if pool is not None:
            env[MAX_JOBS_ENV] = str(GREENLETS // PROCESSES)
        return env

    def worker_commands(self, pool: str) -> list[list[str]]:
        return [[script("arq"), f"{MODULE}.WorkerSettings"] for _ in range(PROCESSES)]

    def enqueue(self, task: str, args: tuple[object, ...]) -> None:
        self.loop.run_until_complete(self.pool.enqueue_job(task, *args))

    def enqueue_at(self, task: str, argsets: list[tuple[object, ...]], due: float) -> None:
        when = datetime.fromtimestamp(due, UTC)
        for args in argsets:
            self.loop.run_until_complete(self.pool.enqueue_job(task, *args, _defer_until=when))

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.aclose())
        self.loop.close()
