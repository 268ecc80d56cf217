"""Run the suite: every workload on every queue, repeated, then write the report.

    python -m bench.suite              # the full profile (issue #11's sizes, 3 repetitions)
    python -m bench.suite --quick      # small sizes, one repetition (development)

The Redis database (CONVEYOR_BENCH_REDIS_URL, default redis://127.0.0.1:6379/15) is
FLUSHED before every run: give the suite a database of its own. conveyor's job store
is a fresh PostgreSQL database (CONVEYOR_BENCH_DATABASE_URL, default: the database
``conveyor_bench`` on 127.0.0.1:5432, dropped and re-created at the start).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.suite import report
from bench.suite.adapters import ADAPTERS, Adapter, Context, adapter
from bench.suite.goals import evaluate
from bench.suite.model import QUEUES, Measurement, Results
from bench.suite.probe import Reader
from bench.suite.procs import ROOT
from bench.suite.workloads import api, delays, io, latency, memory, throughput
from bench.suite.workloads.common import Sizes

Workload = Callable[[Adapter, Reader, Sizes], list[Measurement]]
WORKLOADS: dict[str, Workload] = {
    "throughput": throughput.run,
    "latency": latency.run,
    "io": io.run,
    "api": api.run,
    "delays": delays.run,
    "memory": memory.run,
}
QUICK = Sizes(
    noop_jobs=2_000, latency_jobs=50, io_jobs=300, api_seconds=3, api_batches=3,
    delayed_jobs=1_000, delay_lead=5, drain_cap=15, enqueue_cap=10, latency_cap=10,
    memory_jobs=20_000, memory_cap=40,
)  # fmt: skip
#: conveyor and its reference repeat every workload; the peers run fewer times (the
#: whole suite must fit in about 20 minutes on a 2-core machine)
HEADLINE = ("conveyor", "celery")
#: workloads run once, on conveyor and its reference only (the 100,000-job memory run is
#: the longest of the suite; its figure is a growth over the run, not a rate to repeat)
ONCE = frozenset({"memory"})
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
RESULTS = ROOT / "var" / "bench" / "results.json"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/conveyor_bench"


def fresh_database(url: str) -> None:
    """Drop and re-create the PostgreSQL database ``url`` names."""
    import psycopg  # noqa: PLC0415  (only when the store is PostgreSQL)

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} vCPU ({model}), {system}, Python {platform.python_version()}"


def load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def _run_one(name: str, queue: Adapter, reader: Reader, sizes: Sizes) -> list[Measurement]:
    began = time.time()
    try:
        found = WORKLOADS[name](queue, reader, sizes)
    except Exception as exc:  # one failing run must not lose the rest of the suite
        traceback.print_exc()
        found = [Measurement(name, "error", queue.name, "default", "", False,
                             na=f"{type(exc).__name__}: {exc}"[:160])]  # fmt: skip
    log(f"{name} {queue.name}: {time.time() - began:.0f} s")
    return found


def planned(rep: int, workload: str, queue: str, reps: tuple[int, int]) -> bool:
    """Whether repetition ``rep`` (0-based) of ``workload`` runs on ``queue``."""
    headline = queue in HEADLINE
    if rep >= (reps[0] if headline else reps[1]):
        return False
    if workload in ONCE:
        return rep == 0 and headline
    # only conveyor has an HTTP API: the others just report n/a, once
    return not (workload == "api" and rep > 0 and queue != "conveyor")


def run(queues: list[str], workloads: list[str], reps: tuple[int, int], sizes: Sizes,
        ctx: Context, progress: Callable[[Results, dict[str, str], dict[str, str]], None],
        ) -> tuple[Results, dict[str, str], dict[str, str]]:  # fmt: skip
    """Every workload on every queue; ``reps``: (conveyor and Celery, the peers).

    ``progress`` gets the results so far after every repetition round."""
    results, versions, flags = Results(), {"python": platform.python_version()}, {}
    reader = Reader(ctx.redis_url)
    drivers: dict[str, Adapter] = {}
    for name in queues:
        try:
            drivers[name] = adapter(name, ctx)
            versions[name] = drivers[name].version()
            flags[name] = drivers[name].flags()
        except Exception as exc:  # a peer that cannot be installed or imported
            for workload in workloads:
                results.add(Measurement(workload, "error", name, "default", "", False,
                                        na=f"{type(exc).__name__}: {exc}"[:160]))  # fmt: skip
    for rep in range(max(reps)):  # interleaved: load drift hits every queue alike
        for workload in workloads:
            for name, driver in drivers.items():
                if not planned(rep, workload, name, reps):
                    continue
                wanted = reps[0] if name in HEADLINE else reps[1]
                log(f"rep {rep + 1}/{wanted}: {workload} on {name}")
                for item in _run_one(workload, driver, reader, sizes):
                    results.add(item)
        progress(results, versions, flags)
    for driver in drivers.values():
        driver.close()
    return results, versions, flags


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="conveyor vs plain Celery vs peers (issue #11)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions [3; quick 1]")
    parser.add_argument(
        "--peer-reps", type=int, default=None, help="repetitions of the peers [1; quick 1]"
    )
    parser.add_argument("--queues", default=",".join(QUEUES), help="comma-separated")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    parser.add_argument(
        "--redis-url", default=os.environ.get("CONVEYOR_BENCH_REDIS_URL", DEFAULT_REDIS)
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("CONVEYOR_BENCH_DATABASE_URL", DEFAULT_PG)
    )
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs" / "img" / "benchmarks.png")
    parser.add_argument("--no-write", action="store_true", help="only print the report")
    parser.add_argument(
        "--replot", action="store_true", help="redraw the chart from the last run's results"
    )
    args = parser.parse_args(argv)
    if args.replot:
        saved = json.loads(RESULTS.read_text())
        report.draw_chart(Results.from_json(saved), args.chart)
        return
    queues = [q for q in args.queues.split(",") if q]
    workloads = [w for w in args.workloads.split(",") if w]
    for name in queues:
        if name not in ADAPTERS:
            parser.error(f"unknown queue {name!r}; known: {', '.join(ADAPTERS)}")
    for name in workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    sizes = QUICK if args.quick else Sizes()
    reps = (args.reps or (1 if args.quick else 3), args.peer_reps or 1)
    fresh_database(args.database_url)
    ctx = Context(args.redis_url, args.database_url, tempfile.mkdtemp(prefix="conveyor-bench-"))
    load_before, began = load(), time.time()
    log(f"suite: {', '.join(queues)} x {', '.join(workloads)}, repetitions {reps}")

    def write(results: Results, versions: dict[str, str], flags: dict[str, str]) -> None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results.to_json(), indent=1))
        info = report.RunInfo(
            date=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            machine=machine(),
            load_before=load_before,
            load_after=load(),
            duration_s=time.time() - began,
            profile=f"{'quick' if args.quick else 'full'}, {reps[0]} repetition(s) of "
            f"conveyor and plain Celery, {reps[1]} of each peer",
            versions=versions,
            flags=flags,
            sizes=describe(sizes),
        )
        _write_report(args, results, info)

    results, _, _ = run(queues, workloads, reps, sizes, ctx, write)
    for goal in evaluate(results):
        log(f"goal {goal.name}: {goal.verdict} ({goal.figure})")


def _write_report(args: argparse.Namespace, results: Results, info: report.RunInfo) -> None:
    goals = evaluate(results)
    chart = None
    if not args.no_write:
        report.draw_chart(results, args.chart)
        chart = os.path.relpath(args.chart, args.doc.parent)
    body = report.section(results, goals, info, chart)
    if args.no_write:
        print(body)
    else:
        report.write_doc(args.doc, body)
        log(f"wrote {args.doc} and {args.chart}")


def describe(sizes: Sizes) -> dict[str, str]:
    caps = f"drain capped at {sizes.drain_cap:.0f} s, enqueue at {sizes.enqueue_cap:.0f} s"
    api = f"{sizes.api_rate} req/s for {sizes.api_seconds:.0f} s"
    return {
        "no-op jobs": f"{sizes.noop_jobs:,} ({caps})",
        "latency jobs": f"{sizes.latency_jobs:,}",
        "I/O jobs (10 ms sleep)": f"{sizes.io_jobs:,} per pool",
        "API": f"{api}; {sizes.api_batches} batches of 1,000 (one client to `conveyor api`, "
        "then two clients to `conveyor api --workers 2`)",
        "long-delay jobs": f"{sizes.delayed_jobs:,}, due {sizes.delay_lead:.0f} s after "
        "the estimated end of enqueueing",
        "latency cap": f"{sizes.latency_cap:.0f} s",
        "memory jobs": f"{sizes.memory_jobs:,} no-op jobs sent while the worker drains them, "
        f"at most {sizes.memory_cap:.0f} s per queue",
        "start cap": f"first job within {sizes.start_cap:.0f} s of starting the workers",
    }
