"""Issue #11's goals, each evaluated on one run's results (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.suite.model import CELERY, CHOSEN, CONVEYOR, Results, best_peer, ratio
from bench.suite.workloads.api import BATCH_SHAPES, ONE_PROCESS, SCALED

#: the variant of the no-op, latency and delay workloads (each queue's usual workers)
REFERENCE_POOL = "default"
#: "stays flat": RSS grows by less than this fraction of its size at the start of the run
FLAT_RSS_FRACTION = 0.10


@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    #: the measured figure as text ("—" when it could not be measured)
    figure: str
    #: True met, False missed, None not measured
    met: bool | None

    @property
    def verdict(self) -> str:
        return {True: "met", False: "missed", None: "not measured"}[self.met]


def _drain(results: Results) -> Goal:
    target = ">= 0.9x plain Celery (no-op drain, prefork)"
    mine = results.median("throughput", "drain_rate", CONVEYOR, REFERENCE_POOL)
    ref = results.median("throughput", "drain_rate", CELERY, REFERENCE_POOL)
    r = ratio(mine, ref)
    if r is None or mine is None or ref is None:
        return Goal("No-op drain", target, "—", None)
    return Goal("No-op drain", target, f"{r:.2f}x ({mine:,.0f} vs {ref:,.0f} jobs/s)", r >= 0.9)


def _latency(results: Results) -> Goal:
    target = "p50 <= plain Celery + 1 ms"
    mine = results.median("latency", "p50_ms", CONVEYOR, REFERENCE_POOL)
    ref = results.median("latency", "p50_ms", CELERY, REFERENCE_POOL)
    if mine is None or ref is None:
        return Goal("Enqueue->start latency", target, "—", None)
    delta = mine - ref
    return Goal(
        "Enqueue->start latency",
        target,
        f"{delta:+.2f} ms ({mine:.2f} vs {ref:.2f} ms)",
        delta <= 1.0,
    )


def _io(results: Results) -> Goal:
    """conveyor's own pick for an I/O queue (no -P, no -c) against the best peer's best pool."""
    target = ">= best peer (conveyor: the pool it picks for an I/O queue)"
    mine = results.median("io", "rate", CONVEYOR, CHOSEN)
    peer = best_peer(results, "io", "rate")
    if mine is None or peer is None:
        return Goal("I/O-bound (10 ms sleeps)", target, "—", None)
    figure = f"{mine:,.0f}/s ({CHOSEN}) vs {peer[2]:,.0f}/s ({peer[0]}, {peer[1]})"
    return Goal("I/O-bound (10 ms sleeps)", target, figure, mine >= peer[2])


def _api_single(results: Results) -> Goal:
    target = "p99 < 15 ms at 200 req/s"
    p99 = results.median("api", "single_p99_ms", CONVEYOR, "200 req/s")
    if p99 is None:
        return Goal("API single submit", target, "—", None)
    return Goal("API single submit", target, f"p99 {p99:.1f} ms", p99 < 15)


def _api_batch(results: Results) -> Goal:
    """Met by the API as deployed on this machine (a process per core, two clients); the
    single process with one client is stated beside it."""
    target = ">= 10,000 jobs/s (`conveyor api --workers 2`: a process per core)"
    scaled = results.median("api", "batch_rate", CONVEYOR, BATCH_SHAPES[SCALED])
    single = results.median("api", "batch_rate", CONVEYOR, BATCH_SHAPES[ONE_PROCESS])
    if scaled is None:
        return Goal("API batch submit", target, "—", None)
    figure = f"{scaled:,.0f} jobs/s ({BATCH_SHAPES[SCALED]})"
    if single is not None:
        figure += f"; {single:,.0f} jobs/s with {BATCH_SHAPES[ONE_PROCESS]}"
    return Goal("API batch submit", target, figure, scaled >= 10_000)


def _delays(results: Results) -> Goal:
    target = "last of 10,000 started <= 2 s after due, 0 duplicates"
    lag = results.median("delays", "last_start_lag_s", CONVEYOR, REFERENCE_POOL)
    dups = results.get("delays", "duplicates", CONVEYOR, REFERENCE_POOL)
    if lag is None or dups is None or not dups.values:
        return Goal("Long delays", target, "—", None)
    worst = max(dups.values)
    row = results.get("delays", "last_start_lag_s", CONVEYOR, REFERENCE_POOL)
    unfinished = [n for n in (row.notes if row else []) if n.startswith("only ")]
    if unfinished:  # stopped at the cap: the last job had not started, the lag is a lower bound
        return Goal(
            "Long delays",
            target,
            f"> {lag:.2f} s ({unfinished[0]}), {worst:.0f} duplicates",
            False,
        )
    return Goal(
        "Long delays",
        target,
        f"{lag:.2f} s, {worst:.0f} duplicates",
        lag <= 2.0 and worst == 0,
    )


def _memory(results: Results) -> Goal:
    """The memory workload (100,000 jobs) when it ran, else the no-op drain's RSS figures."""
    target = f"RSS growth < {FLAT_RSS_FRACTION:.0%} of the starting RSS"
    workload = (
        "memory" if results.get("memory", "rss_growth_mb", CONVEYOR, "default") else "throughput"
    )
    growth = results.get(workload, "rss_growth_mb", CONVEYOR, REFERENCE_POOL)
    start = results.median(workload, "rss_start_mb", CONVEYOR, REFERENCE_POOL)
    if growth is None or not growth.values or start is None:
        return Goal("Worker memory", target, "—", None)
    worst = max(growth.values)
    jobs = next((n for n in growth.notes if n.startswith("over ")), "")
    return Goal(
        "Worker memory",
        target,
        f"{worst:+.1f} MB from {start:.0f} MB {jobs}".strip(),
        worst < FLAT_RSS_FRACTION * start,
    )


EVALUATORS: tuple[Callable[[Results], Goal], ...] = (
    _drain,
    _latency,
    _io,
    _api_single,
    _api_batch,
    _delays,
    _memory,
)


def evaluate(results: Results) -> list[Goal]:
    return [evaluator(results) for evaluator in EVALUATORS]
