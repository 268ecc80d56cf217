"""Dramatiq actors on its Redis broker (default middleware, no retries for the benchmark)."""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.suite import probe

broker = RedisBroker(url=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/15"))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default", max_retries=0)
def noop() -> None:
    probe.finished(time.time())


@dramatiq.actor(queue_name="default", max_retries=0)
def sleep(ms: int) -> None:
    started = time.time()
    time.sleep(ms / 1000)
    probe.finished(started)


@dramatiq.actor(queue_name="default", max_retries=0)
def stamp(sent_at: float) -> None:
    probe.started_after(sent_at)


@dramatiq.actor(queue_name="default", max_retries=0)
def delayed(index: int) -> None:
    probe.delayed_started(index)
