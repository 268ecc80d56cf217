"""Huey tasks on RedisHuey (its defaults)."""

from __future__ import annotations

import os
import time

from huey import RedisHuey

from bench.suite import probe

huey = RedisHuey("bench", url=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/15"))


@huey.task()
def noop() -> None:
    probe.finished(time.time())


@huey.task()
def sleep(ms: int) -> None:
    started = time.time()
    time.sleep(ms / 1000)
    probe.finished(started)


@huey.task()
def stamp(sent_at: float) -> None:
    probe.started_after(sent_at)


@huey.task()
def delayed(index: int) -> None:
    probe.delayed_started(index)
