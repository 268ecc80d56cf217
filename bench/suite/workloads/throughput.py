"""Workload 1: no-op jobs. Enqueue rate from one producer, drain rate (first start ->
last completion) with the whole backlog queued before the workers start, and the
workers' RSS growth while draining (workload 6 folded in)."""

from __future__ import annotations

import time

from bench.suite.adapters.base import NOOP, Adapter
from bench.suite.model import Measurement
from bench.suite.probe import Reader
from bench.suite.stats import rate
from bench.suite.workloads.common import Sizes, enqueue_capped, wait_for, workers

NAME = "throughput"
VARIANT = "default"
#: RSS is first read when this fraction of the jobs is done (imports and pools warmed)
RSS_BASELINE_AT = 0.05


def run(adapter: Adapter, reader: Reader, sizes: Sizes) -> list[Measurement]:
    reader.reset()
    adapter.prepare()
    sent, seconds = enqueue_capped(adapter, NOOP, (), sizes.noop_jobs, sizes.enqueue_cap)
    notes = (
        []
        if sent == sizes.noop_jobs
        else [f"enqueue stopped at {sent:,} jobs after {seconds:.0f} s"]
    )
    with workers(adapter.default_commands(), adapter.env(), f"{adapter.name}-noop") as group:
        began = time.time()
        deadline = began + sizes.start_cap + sizes.drain_cap
        if wait_for(reader, 1, began + sizes.start_cap, group) == 0:
            notes.append(f"no job started within {sizes.start_cap:.0f} s")
            deadline = began
        baseline = wait_for(reader, int(sent * RSS_BASELINE_AT), deadline, group)
        rss_start = group.rss_mb()
        first, _ = reader.span()
        stop_at = min(deadline, (first or time.time()) + sizes.drain_cap)
        done = wait_for(reader, sent, stop_at, group)
        rss_end = group.rss_mb()
    first, last = reader.span()
    if done < sent:
        notes.append(f"drain stopped after {last - first:.0f} s at {done:,} of {sent:,} jobs")
    measure = _factory(adapter.name, notes)
    return [
        measure("enqueue_rate", "jobs/s", True, rate(sent, seconds)),
        measure("drain_rate", "jobs/s", True, rate(done, last - first)),
        measure("rss_start_mb", "MB", False, rss_start),
        measure(
            "rss_growth_mb", "MB", False, rss_end - rss_start, [f"over {done - baseline:,} jobs"]
        ),
    ]


def _factory(queue: str, notes: list[str]):  # type: ignore[no-untyped-def]
    def measure(metric: str, unit: str, higher: bool, value: float,
                extra: list[str] | None = None) -> Measurement:  # fmt: skip
        return Measurement(NAME, metric, queue, VARIANT, unit, higher, [value],
                           notes=[*notes, *(extra or [])])  # fmt: skip

    return measure
