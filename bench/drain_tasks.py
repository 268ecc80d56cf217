"""The no-op conveyor task ``bench/drain.py`` runs (its plain Celery twin: drain_celery.py).

``CONVEYOR_BENCH_DROP_HOOKS`` (bench only, read here and nowhere in conveyor): a
comma-separated list of hook class names (e.g. ``LogHook,CallbackHook``) removed
from each worker process's hook list before its first run, to measure what each
hook costs (``python -m bench.drain --env CONVEYOR_BENCH_DROP_HOOKS=LogHook``).
``CONVEYOR_BENCH_TIME_HOOKS=1`` (bench only) times every hook moment, the cancel gate's
store read and the record-before-ack flush in each pool process and publishes the
totals to the probe's Redis; ``python -m bench.drain_tasks REDIS_URL`` prints them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import signals

from bench.drain_probe import PROBE_ENV  # (also connects the start/finish probe)
from conveyor.hooks import Hook
from conveyor.runtime import runtime_for
from conveyor.task import task

TASK = "bench.noop"
DROP_ENV = "CONVEYOR_BENCH_DROP_HOOKS"

_trimmed: set[int] = set()


@task(name=TASK)
def noop(n: int) -> None:
    """Does nothing: what is measured is everything around it."""
    return None


@signals.task_prerun.connect(weak=False)
def _drop_hooks(sender: Any = None, **_: Any) -> None:
    """Remove the hooks named in CONVEYOR_BENCH_DROP_HOOKS (once per process)."""
    drop = {name.strip() for name in os.environ.get(DROP_ENV, "").split(",") if name.strip()}
    if not drop or os.getpid() in _trimmed or sender is None:
        return
    _trimmed.add(os.getpid())
    hooks = runtime_for(sender.app).hooks
    hooks[:] = [hook for hook in hooks if type(hook).__name__ not in drop]


# -- CONVEYOR_BENCH_TIME_HOOKS: time every hook moment in the pool processes ------------
TIME_ENV = "CONVEYOR_BENCH_TIME_HOOKS"
TIMES_KEY = "bench:drain:hook-times"
_MOMENTS = ("before_run", "on_start", "on_success", "on_skip", "on_retry", "on_failure")


class _Timings:
    def __init__(self) -> None:
        self.pid = 0
        self.totals: dict[str, list[float]] = {}
        self.started = 0.0
        self.runs = 0
        self.client: Any = None

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        slot = self.totals.setdefault(name, [0, 0.0])

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                slot[0] += 1
                slot[1] += time.perf_counter() - began

        return wrapper

    def install(self, app: Any) -> None:
        self.pid, self.totals, self.runs = os.getpid(), {}, 0
        runtime = runtime_for(app)
        for hook in runtime.hooks:
            for moment in _MOMENTS:
                if getattr(type(hook), moment) is not getattr(Hook, moment):
                    name = f"{type(hook).__name__}.{moment}"
                    setattr(hook, moment, self.timed(name, getattr(hook, moment)))
        recorder: Any = runtime.recorder
        recorder.flush = self.timed("recorder.flush", recorder.flush)
        if hasattr(recorder, "flush_job"):  # record-before-ack since the flush_job change
            recorder.flush_job = self.timed("recorder.flush_job", recorder.flush_job)
        store: Any = runtime.store
        store.get_job = self.timed("store.get_job (inside the gate)", store.get_job)
        url = os.environ.get(PROBE_ENV)
        self.client = redis.Redis.from_url(url) if url else None

    def publish(self) -> None:
        if self.client is not None:
            self.client.hset(TIMES_KEY, str(self.pid), json.dumps(self.totals))


TIMINGS = _Timings()


@signals.task_prerun.connect(weak=False)
def _time_prerun(sender: Any = None, **_: Any) -> None:
    if not os.environ.get(TIME_ENV) or sender is None:
        return
    if TIMINGS.pid != os.getpid():
        TIMINGS.install(sender.app)
    TIMINGS.started = time.perf_counter()


@signals.task_postrun.connect(weak=False)
def _time_postrun(**_: Any) -> None:
    if not os.environ.get(TIME_ENV) or TIMINGS.pid != os.getpid():
        return
    slot = TIMINGS.totals.setdefault("task_prerun -> task_postrun (whole run)", [0, 0.0])
    slot[0] += 1
    slot[1] += time.perf_counter() - TIMINGS.started
    TIMINGS.runs += 1
    if TIMINGS.runs % 100 == 0:
        TIMINGS.publish()


def hook_times(client: redis.Redis) -> dict[str, tuple[int, float]]:
    """Per name over every pool process: (calls, mean milliseconds per call)."""
    merged: dict[str, list[float]] = {}
    for raw in client.hgetall(TIMES_KEY).values():
        for name, (count, total) in json.loads(raw).items():
            slot = merged.setdefault(name, [0, 0.0])
            slot[0] += count
            slot[1] += total
    return {n: (int(c), 1000 * t / c if c else 0.0) for n, (c, t) in merged.items()}


if __name__ == "__main__":
    import sys

    for name, (count, ms) in sorted(hook_times(redis.Redis.from_url(sys.argv[1])).items()):
        print(f"| {name} | {count} | {ms:.3f} |")
