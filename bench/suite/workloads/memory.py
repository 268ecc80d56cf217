"""Workload 6: worker memory over 100,000 no-op jobs (issue #11: "stays flat").

The jobs are sent in batches by a producer thread while the worker drains them (the
backlog of a busy day, not a pre-filled queue), within a time budget per queue. The
resident memory (RSS) of the worker's main process and, apart, of its pool children
is read after the first jobs (imports and pools warm: the start), every 10,000 jobs,
and at the end; the growth is end - start. Prefork children are replaced every
``worker_max_tasks_per_child`` jobs (conveyor: 1,000), so the main process's figure
is the one that shows a leak of the worker itself; a replaced child starts as a copy
of the main process, so the children's figure follows the main process's
(docs/bench-notes/memory.md; ``python -m bench.memory`` runs this workload alone).
"""

from __future__ import annotations

import threading
import time

from bench.suite.adapters.base import NOOP, Adapter
from bench.suite.model import Measurement
from bench.suite.probe import Reader
from bench.suite.procs import Group, _children, _rss_kb
from bench.suite.workloads.common import Sizes, wait_for, workers

NAME = "memory"
VARIANT = "default"
#: RSS at the start is read when this many jobs are done
WARM_JOBS = 1_000
EVERY = 10_000
BATCH = 1_000


def run(adapter: Adapter, reader: Reader, sizes: Sizes) -> list[Measurement]:
    reader.reset()
    adapter.prepare()
    total = sizes.memory_jobs
    stop = threading.Event()
    sent = [0]
    producer = threading.Thread(
        target=_produce, args=(adapter, total, sent, stop), name="memory-producer", daemon=True
    )
    notes: list[str] = []
    samples: list[tuple[int, float, float]] = []
    with workers(adapter.default_commands(), adapter.env(), f"{adapter.name}-memory") as group:
        began = time.time()
        producer.start()
        deadline = began + sizes.start_cap + sizes.memory_cap
        if wait_for(reader, 1, began + sizes.start_cap, group) == 0:
            notes.append(f"no job started within {sizes.start_cap:.0f} s")
            deadline = began
        done = _sample(reader, group, total, deadline, samples)
        stop.set()
        producer.join(30)
    elapsed = time.time() - began
    if done < total:
        notes.append(f"stopped after {elapsed:.0f} s at {done:,} of {total:,} jobs "
                     f"({sent[0]:,} sent)")  # fmt: skip
    if len(samples) < 2:
        return [Measurement(NAME, "rss_growth_mb", adapter.name, VARIANT, "MB", False,
                            na="; ".join(notes) or "too few jobs to compare")]  # fmt: skip
    return _measurements(adapter.name, samples, notes)


def _produce(adapter: Adapter, total: int, sent: list[int], stop: threading.Event) -> None:
    while sent[0] < total and not stop.is_set():
        count = min(BATCH, total - sent[0])
        adapter.enqueue_bulk(NOOP, [()] * count)
        sent[0] += count


def _sample(reader: Reader, group: Group, total: int, deadline: float,
            samples: list[tuple[int, float, float]]) -> int:  # fmt: skip
    """Wait for the jobs, reading RSS at WARM_JOBS, every EVERY jobs and at the end."""
    next_at = WARM_JOBS
    pool = 0
    done = reader.done()
    while done < total and time.time() < deadline and group.alive():
        if done >= next_at:
            pool = pool or group.descendants()
            samples.append((reader.done(), *_whole_pool_rss(group, pool)))
            next_at = (done // EVERY + 1) * EVERY
        time.sleep(0.2)
        done = reader.done()
    if group.alive() and samples:
        samples.append((reader.done(), *_whole_pool_rss(group, pool)))
    return done


def _whole_pool_rss(group: Group, pool: int) -> tuple[float, float]:
    """RSS (main, children) read while all ``pool`` children run: not in the instant a
    prefork child is being replaced (``max_tasks_per_child``), which would hide one (an
    exited child not yet reaped still counts as a child, with no memory)."""
    for _ in range(100):
        if _live_children(group) == pool:
            break
        time.sleep(0.05)
    return group.rss_split_mb()


def _live_children(group: Group) -> int:
    """Descendants of the group's processes that have memory (not exited, unreaped ones)."""
    found = 0
    pending = [proc.pid for proc in group.procs]
    while pending:
        children = _children(pending.pop())
        found += sum(1 for child in children if _rss_kb(child) > 0)
        pending += children
    return found


def _measurements(queue: str, samples: list[tuple[int, float, float]],
                  notes: list[str]) -> list[Measurement]:  # fmt: skip
    (jobs0, main0, kids0), (jobs1, main1, kids1) = samples[0], samples[-1]
    series = ", ".join(f"{n // 1000:,}k: {m:.0f}+{c:.0f}" for n, m, c in samples)
    series += " (main process + pool children)"
    over = f"over {jobs1 - jobs0:,} jobs"

    def measure(metric: str, value: float, more: list[str] | None = None) -> Measurement:
        return Measurement(NAME, metric, queue, VARIANT, "MB", False, [value],
                           notes=[*notes, *(more or [])])  # fmt: skip

    return [
        measure("rss_start_mb", main0 + kids0),
        measure("rss_main_start_mb", main0),
        measure("rss_children_start_mb", kids0),
        # the series once, under the headline figure
        measure("rss_growth_mb", main1 + kids1 - main0 - kids0, [over, f"RSS MB at {series}"]),
        measure("rss_main_growth_mb", main1 - main0, [over]),
        measure("rss_children_growth_mb", kids1 - kids0, [over]),
        Measurement(NAME, "jobs", queue, VARIANT, "jobs", True, [float(jobs1)], notes=notes),
    ]
