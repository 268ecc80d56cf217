"""Workload 3: jobs that sleep 10 ms (I/O-bound), throughput per pool.

conveyor also runs the pool it picks itself for an I/O queue (``conveyor worker -Q
notifications``, no ``-P``/``-c``): the "chosen pool" variant, the figure its goal
compares with the best peer.
"""

from __future__ import annotations

import time

from bench.suite.adapters.base import POOLS, SLEEP, Adapter
from bench.suite.model import CHOSEN, Measurement
from bench.suite.probe import Reader
from bench.suite.stats import rate
from bench.suite.workloads.common import Sizes, enqueue_capped, wait_for, workers

NAME = "io"
SLEEP_MS = 10


def run(adapter: Adapter, reader: Reader, sizes: Sizes) -> list[Measurement]:
    results = []
    for pool in POOLS:
        reason = adapter.pools.get(pool, "not offered")
        if reason is not None:
            results.append(Measurement(NAME, "rate", adapter.name, pool, "jobs/s", True, na=reason))
            continue
        label = f"{adapter.name}-io-{pool.split(maxsplit=1)[0]}"
        results.append(
            _measure(adapter, reader, sizes, pool, adapter.worker_commands(pool), adapter.env(pool),
                     label)
        )  # fmt: skip
    if adapter.io_queue:
        results.append(_chosen(adapter, reader, sizes))
    return results


def _chosen(adapter: Adapter, reader: Reader, sizes: Sizes) -> Measurement:
    with adapter.sending_to(adapter.io_queue):
        found = _measure(adapter, reader, sizes, CHOSEN, adapter.io_queue_commands(),
                         adapter.env(), f"{adapter.name}-io-chosen")  # fmt: skip
    found.notes.append(f"chosen pool: {adapter.io_queue_pool()}")
    return found


def _measure(
    adapter: Adapter,
    reader: Reader,
    sizes: Sizes,
    variant: str,
    commands: list[list[str]],
    env: dict[str, str],
    label: str,
) -> Measurement:
    reader.reset()
    adapter.prepare()
    sent, _ = enqueue_capped(adapter, SLEEP, (SLEEP_MS,), sizes.io_jobs, sizes.enqueue_cap)
    with workers(commands, env, label) as group:
        began = time.time()
        deadline = began + sizes.start_cap + sizes.drain_cap
        wait_for(reader, 1, began + sizes.start_cap, group)
        first, _ = reader.span()
        done = wait_for(
            reader, sent, min(deadline, (first or time.time()) + sizes.drain_cap), group
        )
    first, last = reader.span()
    notes = [] if done >= sent else [f"{variant}: stopped at {done:,} of {sent:,} jobs"]
    if done == 0:
        reason = f"no job started within {sizes.start_cap:.0f} s (see var/bench/logs/{label}-*)"
        return Measurement(NAME, "rate", adapter.name, variant, "jobs/s", True, na=reason)
    return Measurement(NAME, "rate", adapter.name, variant, "jobs/s", True,
                       [rate(done, last - first)], notes=notes)  # fmt: skip
