"""Workload 2: single jobs on an idle worker, enqueue -> start latency p50/p95/p99.

Each job carries the time just before the producer's call; the task body reports
``now - sent_at`` when it starts. The next job is sent only after the previous
one started (and a short pause), so the worker is idle every time."""

from __future__ import annotations

import time

from bench.suite.adapters.base import STAMP, Adapter
from bench.suite.model import Measurement
from bench.suite.probe import Reader
from bench.suite.stats import percentile
from bench.suite.workloads.common import Sizes, warm_up, workers

NAME = "latency"
VARIANT = "default"
PAUSE = 0.02


def run(adapter: Adapter, reader: Reader, sizes: Sizes) -> list[Measurement]:
    reader.reset()
    adapter.prepare()
    latencies: list[float] = []
    notes: list[str] = []
    with workers(adapter.default_commands(), adapter.env(), f"{adapter.name}-latency"):
        if not warm_up(adapter, reader):
            notes.append("workers did not start")
        else:
            stop_at = time.time() + sizes.latency_cap
            for _ in range(sizes.latency_jobs):
                if time.time() > stop_at:
                    notes.append(f"stopped after {sizes.latency_cap:.0f} s")
                    break
                adapter.enqueue(STAMP, (time.time(),))
                seen = reader.next_latency(10)
                if seen is None:
                    notes.append("a job did not start within 10 s")
                    break
                latencies.append(seen * 1000)
                time.sleep(PAUSE)
    if not latencies:
        return [Measurement(NAME, "p50_ms", adapter.name, VARIANT, "ms", False, notes=notes)]
    return [
        Measurement(
            NAME,
            f"p{pct}_ms",
            adapter.name,
            VARIANT,
            "ms",
            False,
            [percentile(latencies, pct)],
            notes=list(notes),
        )
        for pct in (50, 95, 99)
    ]
