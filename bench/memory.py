"""Benchmark: a conveyor worker's memory over many no-op jobs (issue #11: "stays flat").

Not a test. Runs the suite's memory workload (bench/suite/workloads/memory.py: jobs sent
in batches while ``conveyor worker -P prefork -c 2`` drains them, RSS of the main process
and of the pool children every 10,000 jobs) with a larger job count and time budget than
the suite's, and prints the series.

    python -m bench.memory [--jobs 100000] [--cap 900] [--env CONVEYOR_X=y ...]
                           [--trace FOLDER [--trace-at 10000,60000]]
    python -m bench.memory --idle 25     # RSS of an idle worker 25 s after its start

``--trace`` also writes tracemalloc snapshots of the worker's processes (bench/memtrace.py);
``python -m bench.memory --diff A.snap B.snap`` prints the biggest growths between two.
Redis (--redis-url, FLUSHED) and the PostgreSQL store (--database-url, dropped and
re-created) default to CONVEYOR_BENCH_REDIS_URL / CONVEYOR_BENCH_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc

from bench.suite.adapters.base import Context
from bench.suite.adapters.conveyor import IMPORTS, ConveyorAdapter
from bench.suite.probe import Reader
from bench.suite.procs import main_and_children_rss_kb
from bench.suite.runner import DEFAULT_PG, DEFAULT_REDIS, fresh_database
from bench.suite.workloads import memory
from bench.suite.workloads.common import Sizes, workers

TRACER = "bench.memtrace"


class TracedAdapter(ConveyorAdapter):
    """conveyor with bench/memtrace.py imported by the worker and extra CONVEYOR_* settings."""

    def __init__(self, ctx: Context, extra: dict[str, str]) -> None:
        super().__init__(ctx)
        self.extra = extra

    def env(self, pool: str | None = None) -> dict[str, str]:
        env = super().env(pool)
        env["CONVEYOR_IMPORTS"] = f"{IMPORTS},{TRACER}"
        env.update(self.extra)
        return env


def diff(old: str, new: str, top: int = 25) -> None:
    before = tracemalloc.Snapshot.load(old)
    after = tracemalloc.Snapshot.load(new)
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(ignore), after.filter_traces(ignore)
    total = sum(s.size for s in after.statistics("filename")) / 1e6
    print(f"traced: {total:.1f} MB in {new}")
    for label, key in (("by line", "lineno"), ("by traceback", "traceback")):
        print(f"--- top growths {label}")
        for stat in after.compare_to(before, key)[:top]:
            print(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks")
            frames = stat.traceback.format(limit=8 if key == "traceback" else 1)
            print("\n".join("    " + line for line in frames))


def idle(driver: TracedAdapter, seconds: float) -> None:
    """RSS of the worker's processes ``seconds`` after it started, no job sent."""
    with workers(driver.default_commands(), driver.env(), "conveyor-idle") as group:
        time.sleep(seconds)
        for proc in group.procs:
            main, children = (kb / 1024 for kb in main_and_children_rss_kb(proc.pid))
            total = main + children
            print(f"idle after {seconds:.0f} s: main {main:.1f} MB, "
                  f"children {children:.1f} MB, total {total:.1f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--cap", type=float, default=900.0, help="seconds at most")
    parser.add_argument("--start-cap", type=float, default=90.0, help="first job within")
    parser.add_argument("--env", action="append", default=[], help="CONVEYOR_X=y (repeatable)")
    parser.add_argument("--trace", default=None, help="folder for tracemalloc snapshots")
    parser.add_argument("--trace-at", default="10000,60000")
    parser.add_argument("--diff", nargs=2, metavar="SNAP")
    parser.add_argument("--idle", type=float, default=None, metavar="SECONDS")
    parser.add_argument(
        "--redis-url", default=os.environ.get("CONVEYOR_BENCH_REDIS_URL", DEFAULT_REDIS)
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("CONVEYOR_BENCH_DATABASE_URL", DEFAULT_PG)
    )
    args = parser.parse_args()
    if args.diff:
        diff(*args.diff)
        return
    extra = dict(item.split("=", 1) for item in args.env)
    if args.trace:
        extra.update({"BENCH_TRACEMALLOC": args.trace, "BENCH_TRACEMALLOC_AT": args.trace_at})
    fresh_database(args.database_url)
    ctx = Context(args.redis_url, args.database_url, tempfile.mkdtemp(prefix="conveyor-mem-"))
    driver = TracedAdapter(ctx, extra)
    try:
        if args.idle is not None:
            driver.prepare()
            idle(driver, args.idle)
            return
        sizes = Sizes(memory_jobs=args.jobs, memory_cap=args.cap, start_cap=args.start_cap)
        for item in memory.run(driver, Reader(args.redis_url), sizes):
            value = f"{item.values[0]:.1f}" if item.values else item.na
            print(f"{item.metric}: {value} {item.unit}  {'; '.join(item.notes)}")
    finally:
        driver.close()


if __name__ == "__main__":
    main()
