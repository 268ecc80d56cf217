"""RQ: `rq worker-pool -n 2` (a work horse forked per job, RQ's default worker)."""

from __future__ import annotations

from datetime import UTC, datetime

import redis
from rq import Queue

from bench.suite.adapters.base import (
    ASYNC,
    PREFORK,
    PROCESSES,
    THREADS,
    Adapter,
    Context,
    script,
    version,
)

MODULE = "bench.suite.workers.rq_tasks"
NO_THREADS = "RQ has no thread or greenlet worker (one forked work horse per job)"


class RqAdapter(Adapter):
    name = "rq"
    pools = {PREFORK: None, THREADS: NO_THREADS, ASYNC: NO_THREADS}

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.queue = Queue("default", connection=redis.Redis.from_url(ctx.redis_url))

    def version(self) -> str:
        return version("rq")

    def flags(self) -> str:
        return (
            "`rq worker-pool -n 2` (default Worker: forks per job); delays: `enqueue_at` "
            "with 2 `rq worker --with-scheduler`"
        )

    def worker_commands(self, pool: str) -> list[list[str]]:
        return [[script("rq"), "worker-pool", "-n", str(PROCESSES), "-u", self.ctx.redis_url,
                 "-q", "default"]]  # fmt: skip

    def delay_commands(self) -> list[list[str]]:
        return [
            [script("rq"), "worker", "--with-scheduler", "-u", self.ctx.redis_url, "-q", "default"]
            for _ in range(PROCESSES)
        ]

    def enqueue(self, task: str, args: tuple[object, ...]) -> None:
        self.queue.enqueue(f"{MODULE}.{task}", *args)

    def enqueue_at(self, task: str, argsets: list[tuple[object, ...]], due: float) -> None:
        when = datetime.fromtimestamp(due, UTC)
        for args in argsets:
            self.queue.enqueue_at(when, f"{MODULE}.{task}", *args)
