"""Plain Celery 5.7: the reference, with conveyor's Celery flags and no conveyor code."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
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
    version,
)

MODULE = "bench.suite.workers.celery_tasks"
POOL_ARGS = {
    PREFORK: ["-P", "prefork", "-c", str(PROCESSES)],
    THREADS: ["-P", "threads", "-c", str(THREADS_PER_WORKER)],
    ASYNC: ["-P", "gevent", "-c", str(GREENLETS)],
}


class CeleryAdapter(Adapter):
    name = "celery"
    pools = dict.fromkeys(POOL_ARGS)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        os.environ["BENCH_BROKER_URL"] = ctx.redis_url
        module = __import__(MODULE, fromlist=["app"])
        self.app: Any = module.app
        self.app.conf.broker_url = ctx.redis_url

    def version(self) -> str:
        return version("celery", "kombu")

    def flags(self) -> str:
        return (
            "`celery worker -P prefork -c 2` (threads `-c 16`, gevent `-c 100`), json, "
            "late acks, reject on worker lost, prefetch 4, results ignored; delays: Celery ETA"
        )

    def worker_commands(self, pool: str) -> list[list[str]]:
        return [
            [sys.executable, "-m", "celery", "-A", MODULE, "worker", "-Q", "default",
             "--loglevel", "WARNING", *POOL_ARGS[pool]]
        ]  # fmt: skip

    def enqueue(self, task: str, args: tuple[object, ...]) -> None:
        self.app.send_task(f"bench.{task}", args=args, queue="default")

    def enqueue_bulk(self, task: str, argsets: list[tuple[object, ...]]) -> None:
        with self.app.producer_or_acquire() as producer:
            for args in argsets:
                self.app.send_task(f"bench.{task}", args=args, queue="default", producer=producer)

    def enqueue_at(self, task: str, argsets: list[tuple[object, ...]], due: float) -> None:
        eta = datetime.fromtimestamp(due, UTC)
        with self.app.producer_or_acquire() as producer:
            for args in argsets:
                self.app.send_task(
                    f"bench.{task}", args=args, queue="default", eta=eta, producer=producer
                )
