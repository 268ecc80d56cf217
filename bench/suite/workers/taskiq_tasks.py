"""Taskiq tasks on taskiq-redis's ListQueueBroker (async tasks, its recommended style)."""

from __future__ import annotations

import asyncio
import os
import time

from taskiq_redis import ListQueueBroker

from bench.suite import probe

broker = ListQueueBroker(
    url=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/15"), queue_name="default"
)


@broker.task(task_name="bench.noop")
async def noop() -> None:
    probe.finished(time.time())


@broker.task(task_name="bench.sleep")
async def sleep(ms: int) -> None:
    started = time.time()
    await asyncio.sleep(ms / 1000)
    probe.finished(started)


@broker.task(task_name="bench.stamp")
async def stamp(sent_at: float) -> None:
    probe.started_after(sent_at)
