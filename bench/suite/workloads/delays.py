"""Workload 5: many long-delay jobs due at the same second. How long after the due
time the last one started, how many ran twice (must be 0), and for a queue that holds
them outside the broker (conveyor: SCHEDULED rows released by its scheduler) how long
after the due time the last one was released: the start lag minus the workers' drain."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bench.suite.adapters.base import DELAYED, Adapter
from bench.suite.model import Measurement
from bench.suite.probe import Reader
from bench.suite.workloads.common import Sizes, warm_up, workers

NAME = "delays"
VARIANT = "default"
#: how long after the last first start the suite keeps watching for duplicates
DUPLICATE_WATCH = 3.0
CALIBRATION = 200
MAX_LEAD = 120.0
#: how often the release watcher asks the store whether a due job is still held
RELEASE_POLL = 0.02
NOT_HELD = "the broker holds the delayed messages itself (no release step)"


def run(adapter: Adapter, reader: Reader, sizes: Sizes) -> list[Measurement]:
    if adapter.delays_na:
        return [_na(adapter.name, adapter.delays_na)]
    reader.reset()
    adapter.prepare()
    notes: list[str] = []
    with workers(adapter.delay_commands(), adapter.env(), f"{adapter.name}-delays") as group:
        if not warm_up(adapter, reader):
            return [_na(adapter.name, "workers did not start")]
        due = time.time() + _lead(adapter, sizes)
        argsets: list[tuple[object, ...]] = [(n,) for n in range(sizes.delayed_jobs)]
        adapter.enqueue_at(DELAYED, argsets, due)
        if time.time() > due:
            notes.append(f"enqueueing ended {time.time() - due:.1f} s after the due time")
        released: list[float] = []
        watcher = _watch_release(adapter, due, due + sizes.drain_cap, released)
        deadline = due + sizes.drain_cap
        distinct = 0
        while time.time() < deadline and group.alive():
            _, distinct, _ = reader.delayed()
            if distinct >= sizes.delayed_jobs:
                break
            time.sleep(0.2)
        time.sleep(DUPLICATE_WATCH)
        if watcher is not None:
            watcher.join()
    runs, distinct, starts = reader.delayed()
    if distinct < sizes.delayed_jobs:
        notes.append(
            f"only {distinct:,} of {sizes.delayed_jobs:,} started by due + {sizes.drain_cap:.0f} s"
        )
    lag = max(starts) - due if starts else float("nan")
    return [
        Measurement(
            NAME, "last_start_lag_s", adapter.name, VARIANT, "s", False, [lag], notes=notes
        ),
        Measurement(NAME, "duplicates", adapter.name, VARIANT, "jobs", False, [runs - distinct]),
        _release_lag(adapter, due, released, watcher is not None),
    ]


def _watch_release(
    adapter: Adapter, due: float, deadline: float, released: list[float]
) -> threading.Thread | None:
    """For a queue that releases held jobs itself: polls (from the due time on) until the
    store holds no job due by then; notes when. The publish of the last claim, one
    pipelined push right after it, is not included. (Until session 6 this also waited for
    ``count`` more Redis LPUSH calls, one per message with kombu; conveyor now pushes a
    chunk of messages with one LPUSH, so calls no longer count messages.)"""
    released_by: Callable[[float], bool] | None = getattr(adapter, "released_by", None)
    if released_by is None:
        return None

    def watch() -> None:
        time.sleep(max(0.0, due - time.time()))
        while time.time() < deadline:
            if released_by(due):
                released.append(time.time())
                return
            time.sleep(RELEASE_POLL)

    thread = threading.Thread(target=watch, name="release-watch", daemon=True)
    thread.start()
    return thread


def _release_lag(adapter: Adapter, due: float, released: list[float], held: bool) -> Measurement:
    metric = "last_release_lag_s"
    if not held:
        return Measurement(NAME, metric, adapter.name, VARIANT, "s", False, na=NOT_HELD)
    notes = [] if released else ["some jobs were still held at the end of the run"]
    lag = released[0] - due if released else float("nan")
    return Measurement(NAME, metric, adapter.name, VARIANT, "s", False, [lag], notes=notes)


def _lead(adapter: Adapter, sizes: Sizes) -> float:
    """Seconds from now to the due time: the estimated enqueue time plus ``delay_lead``.

    The estimate times CALIBRATION delayed jobs due in an hour (they never run here:
    every run starts from a flushed database)."""
    far = time.time() + 3600
    began = time.perf_counter()
    adapter.enqueue_at(DELAYED, [(-1 - n,) for n in range(CALIBRATION)], far)
    per_job = (time.perf_counter() - began) / CALIBRATION
    return min(MAX_LEAD, sizes.delay_lead + 1.3 * per_job * sizes.delayed_jobs)


def _na(queue: str, reason: str) -> Measurement:
    return Measurement(NAME, "last_start_lag_s", queue, VARIANT, "s", False, na=reason)
