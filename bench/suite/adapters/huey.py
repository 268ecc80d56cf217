"""Huey on RedisHuey: `huey_consumer -k process -w 2` (and its thread/greenlet workers)."""

from __future__ import annotations

import os
import sys
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

MODULE = "bench.suite.workers.huey_tasks"
GEVENT_LAUNCHER = "bench.suite.workers.huey_gevent"
POOL_ARGS = {
    PREFORK: ["-k", "process", "-w", str(PROCESSES)],
    THREADS: ["-k", "thread", "-w", str(THREADS_PER_WORKER)],
    ASYNC: ["-k", "greenlet", "-w", str(GREENLETS)],
}


class HueyAdapter(Adapter):
    name = "huey"
    pools = dict.fromkeys(POOL_ARGS)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        os.environ["BENCH_BROKER_URL"] = ctx.redis_url
        self.module: Any = __import__(MODULE, fromlist=["huey"])

    def version(self) -> str:
        return version("huey")

    def flags(self) -> str:
        return (
            "`huey_consumer -k process -w 2` (threads `-k thread -w 16`, greenlets "
            "`-k greenlet -w 100` after gevent's monkey patch), RedisHuey defaults; "
            "delays: `schedule(delay=)`"
        )

    def worker_commands(self, pool: str) -> list[list[str]]:
        if pool == ASYNC:  # greenlets need gevent's monkey patch before the consumer starts
            return [[sys.executable, "-m", GEVENT_LAUNCHER, f"{MODULE}.huey", *POOL_ARGS[pool]]]
        return [[script("huey_consumer"), f"{MODULE}.huey", *POOL_ARGS[pool]]]

    def enqueue(self, task: str, args: tuple[object, ...]) -> None:
        getattr(self.module, task)(*args)

    def enqueue_at(self, task: str, argsets: list[tuple[object, ...]], due: float) -> None:
        function = getattr(self.module, task)
        for args in argsets:
            function.schedule(args, delay=max(0.0, due - time.time()))
