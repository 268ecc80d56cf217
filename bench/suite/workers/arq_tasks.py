"""arq functions and its WorkerSettings (async tasks, its defaults)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, ClassVar

from arq.connections import RedisSettings

from bench.suite import probe

REDIS = RedisSettings.from_dsn(os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/15"))


async def noop(ctx: dict[str, Any]) -> None:
    probe.finished(time.time())


async def sleep(ctx: dict[str, Any], ms: int) -> None:
    started = time.time()
    await asyncio.sleep(ms / 1000)
    probe.finished(started)


async def stamp(ctx: dict[str, Any], sent_at: float) -> None:
    probe.started_after(sent_at)


async def delayed(ctx: dict[str, Any], index: int) -> None:
    probe.delayed_started(index)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [noop, sleep, stamp, delayed]
    redis_settings = REDIS
    max_jobs = int(os.environ.get("BENCH_ARQ_MAX_JOBS", "10"))
