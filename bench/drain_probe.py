"""Start/finish probe for ``bench/drain.py``, loaded by conveyor and plain Celery workers alike.

Each pool process keeps its first start, last finish and count in memory (Celery's
``task_prerun``/``task_postrun`` signals, no I/O on the hot path) and a daemon thread
publishes them to Redis every 50 ms, so both sides are measured the same way.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import redis
from celery import signals

PROBE_ENV = "CONVEYOR_BENCH_PROBE_REDIS"
KEY = "bench:drain:probe"


class _Probe:
    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0
        self.count = 0
        self.pid = 0
        self._reported = -1

    def started(self) -> None:
        if self.pid != os.getpid():  # first task in this (forked) process
            self.pid = os.getpid()
            self.first, self.count, self._reported = None, 0, -1
            url = os.environ.get(PROBE_ENV)
            if url:
                threading.Thread(target=self._report, args=(url,), daemon=True).start()
        if self.first is None:
            self.first = time.time()

    def finished(self) -> None:
        self.last = time.time()
        self.count += 1

    def _report(self, url: str) -> None:
        client = redis.Redis.from_url(url)
        while True:
            time.sleep(0.05)
            self.publish(client)

    def publish(self, client: redis.Redis) -> None:
        if self.count != self._reported and self.first is not None:
            self._reported = self.count
            client.hset(KEY, f"{self.pid}", f"{self.first},{self.last},{self.count}")

    def final(self) -> None:
        """A pool process exits (e.g. max tasks per child): publish its last counts now."""
        url = os.environ.get(PROBE_ENV)
        if url and self.pid == os.getpid():
            self.publish(redis.Redis.from_url(url))


PROBE = _Probe()


@signals.task_prerun.connect(weak=False)
def _prerun(**_: Any) -> None:
    PROBE.started()


@signals.task_postrun.connect(weak=False)
def _postrun(**_: Any) -> None:
    PROBE.finished()


@signals.worker_process_shutdown.connect(weak=False)
def _shutdown(**_: Any) -> None:
    PROBE.final()


def read(client: redis.Redis) -> tuple[float, float, int]:
    """(first start, last finish, jobs finished) over every pool process."""
    rows = [v.decode().split(",") for v in client.hgetall(KEY).values()]
    if not rows:
        return 0.0, 0.0, 0
    return (
        min(float(r[0]) for r in rows),
        max(float(r[1]) for r in rows),
        sum(int(r[2]) for r in rows),
    )
