"""What every queue's tasks report, and how the driver reads it: a few Redis keys.

Each task body makes the same one round trip to Redis (a pipeline), whatever the
queue, so the probe costs every queue the same. Keys live in the benchmark's own
Redis database, which the suite flushes before every run.
"""

from __future__ import annotations

import os
import time

import redis

URL_ENV = "BENCH_PROBE_URL"
FIRST, LAST, DONE = "bench:first", "bench:last", "bench:done"
LATENCIES = "bench:latency"
RUNS, SEEN, STARTS = "bench:runs", "bench:seen", "bench:starts"

_client: redis.Redis | None = None
_client_pid = 0


def client() -> redis.Redis:
    """This process's connection (a new one after a fork)."""
    global _client, _client_pid  # noqa: PLW0603  (one connection per worker process)
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(os.environ[URL_ENV])
        _client_pid = os.getpid()
    return _client


# -- called inside the tasks ---------------------------------------------------------


def finished(started: float) -> None:
    """A job that started at ``started`` has just finished."""
    pipe = client().pipeline(transaction=False)
    pipe.setnx(FIRST, started)
    pipe.incr(DONE)
    pipe.set(LAST, time.time())
    pipe.execute()


def started_after(sent_at: float) -> None:
    """A job sent at ``sent_at`` (epoch seconds) has just started."""
    client().rpush(LATENCIES, time.time() - sent_at)


def delayed_started(index: int) -> None:
    """Delayed job ``index`` has just started (a second start is a duplicate)."""
    pipe = client().pipeline(transaction=False)
    pipe.incr(RUNS)
    pipe.sadd(SEEN, index)
    pipe.rpush(STARTS, time.time())
    pipe.execute()


# -- read by the driver --------------------------------------------------------------


class Reader:
    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)

    def reset(self) -> None:
        self.redis.flushdb()

    def done(self) -> int:
        return int(self.redis.get(DONE) or 0)

    def span(self) -> tuple[float, float]:
        """(first start, last completion) in epoch seconds."""
        first, last = self.redis.mget(FIRST, LAST)
        return float(first or 0), float(last or 0)

    def next_latency(self, timeout: float) -> float | None:
        """The next reported latency, waiting at most ``timeout`` seconds (None if none)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            # short blocking pops: a long one can outlast the client's socket timeout
            popped = self.redis.blpop([LATENCIES], timeout=max(0.01, min(1.0, left)))
            if popped:
                return float(popped[1])

    def delayed(self) -> tuple[int, int, list[float]]:
        """(runs, distinct jobs run, start times)."""
        runs = int(self.redis.get(RUNS) or 0)
        starts = [float(s) for s in self.redis.lrange(STARTS, 0, -1)]
        return runs, int(self.redis.scard(SEEN)), starts
