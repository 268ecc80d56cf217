"""Benchmark: one cluster-wide rate limit shared by several worker processes.

Not a test. Starts WORKERS ``conveyor worker`` processes (one slot each) on a
Redis broker (buckets in Redis, atomic Lua) or the embedded default (buckets in
SQLite), submits a backlog larger than the limit allows for DURATION seconds,
and reports, over the first DURATION seconds after the first start:

* the most jobs started in any 1-second window (must not exceed limit + burst)
* the mean rate (goal: at least 95 % of the limit)

Usage::

    python -m bench.ratelimit [--backend redis|embedded] [--redis-url URL]
                              [--workers 4] [--rate 50/s] [--duration 30]

A job's start is its recorded ``started_at`` (written right after the limiter
let it run); the task body does nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from bench.ratelimit_tasks import FREE_TASK, RATE_ENV, TASK
from bench.suite.procs import Group
from conveyor.engine import create_app
from conveyor.jobs import JobState
from conveyor.logs import configure_logging
from conveyor.policies.ratelimit import parse_rate
from conveyor.settings import load_settings
from conveyor.store import open_store
from conveyor.store.base import JobFilter, JobStore
from conveyor.submit import SubmitRequest, Submitter

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = "bench.ratelimit_tasks"


@dataclass
class Report:
    backend: str
    workers: int
    pool: str
    rate: str
    duration: float
    started: int
    max_in_any_second: int
    allowed_per_second: int
    mean_rate: float
    mean_rate_pct: float


def max_in_window(starts: list[float], window: float = 1.0) -> int:
    starts = sorted(starts)
    best, lo = 0, 0
    for hi, start in enumerate(starts):
        while start - starts[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _env(data_dir: Path, broker: str, rate: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(
        {
            "CONVEYOR_DATA_DIR": str(data_dir),
            "CONVEYOR_IMPORTS": IMPORTS,
            "CONVEYOR_CONFIG": str(data_dir / "none.toml"),
            "CONVEYOR_LOG_LEVEL": "WARNING",
            "CONVEYOR_BROKER_URL": broker,
            RATE_ENV: rate,
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _starts(store: JobStore) -> list[float]:
    """When each finished job started, as recorded (``started_at``: right after the gate)."""
    page = store.list_jobs(JobFilter(state=JobState.SUCCEEDED), 100_000)
    return [
        job.started_at.timestamp()
        for job in page.items
        if job.task in (TASK, FREE_TASK) and job.started_at is not None
    ]


@dataclass(frozen=True)
class Options:
    backend: str = "redis"
    redis_url: str = "redis://127.0.0.1:6379/5"
    database_url: str = ""
    workers: int = 4
    concurrency: int = 1
    pool: str = "prefork"
    rate: str = "50/s"
    duration: float = 30.0
    #: run the same task without a limit: the machine's baseline throughput
    baseline: bool = False


def run(options: Options) -> Report:
    backend, redis_url, database_url = options.backend, options.redis_url, options.database_url
    workers, concurrency, pool = options.workers, options.concurrency, options.pool
    rate, duration = options.rate, options.duration
    parsed = parse_rate(rate)
    data_dir = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    broker = redis_url if backend == "redis" else ""
    env = _env(data_dir, broker, rate)
    env["CONVEYOR_DATABASE_URL"] = database_url
    os.environ[RATE_ENV] = rate
    subprocess.run([sys.executable, "-m", "conveyor", "migrate"], env=env, cwd=ROOT, check=True)
    settings = load_settings(
        data_dir=data_dir,
        broker_url=broker,
        database_url=database_url,
        imports=[IMPORTS],
        log_level="WARNING",
    )
    configure_logging(settings)
    store = open_store(settings)
    app = create_app(settings)
    if backend == "redis":
        app.control.purge()
        redis.Redis.from_url(redis_url).flushdb()  # buckets and start logs of an earlier run
    submitter = Submitter(settings, store, app)
    backlog = int(parsed.count / parsed.period * duration * 1.2) + parsed.burst
    began = time.monotonic()
    for n in range(backlog):  # the backlog is in the queue before any worker starts
        submitter.submit(SubmitRequest(FREE_TASK if options.baseline else TASK, kwargs={"n": n}))
    print(f"submitted {backlog} jobs in {time.monotonic() - began:.1f} s", file=sys.stderr)
    command = [sys.executable, "-m", "conveyor", "worker", "-c", str(concurrency), "-P", pool]
    group = Group([[*command, "-n", f"bench{n}@%h"] for n in range(workers)], env, "ratelimit")
    try:
        deadline = time.time() + duration + 60
        while time.time() < deadline:
            starts = _starts(store)
            if starts and max(starts) - min(starts) >= duration:
                break
            time.sleep(1)
    finally:
        group.stop(grace=15)
    starts = sorted(_starts(store))
    window = [s for s in starts if s < starts[0] + duration] if starts else []
    store.close()
    shutil.rmtree(data_dir, ignore_errors=True)
    limit_per_second = parsed.count / parsed.period
    mean = len(window) / duration
    return Report(
        backend=backend,
        workers=workers,
        pool=f"{pool} x{concurrency}",
        rate="none (baseline)" if options.baseline else str(parsed),
        duration=duration,
        started=len(window),
        max_in_any_second=max_in_window(window),
        allowed_per_second=int(limit_per_second) + parsed.burst,
        mean_rate=round(mean, 2),
        mean_rate_pct=round(100 * mean / limit_per_second, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["redis", "embedded"], default="redis")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--database-url", default="", help="Job store [embedded SQLite].")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=1, help="Pool size per worker.")
    parser.add_argument("--pool", choices=["prefork", "threads"], default="prefork")
    parser.add_argument("--baseline", action="store_true", help="Same task, no limit.")
    parser.add_argument("--rate", default="50/s")
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args()
    report = run(
        Options(
            backend=args.backend,
            redis_url=args.redis_url,
            database_url=args.database_url,
            workers=args.workers,
            concurrency=args.concurrency,
            pool=args.pool,
            rate=args.rate,
            duration=args.duration,
            baseline=args.baseline,
        )
    )
    print(json.dumps(asdict(report), indent=2))


if __name__ == "__main__":
    main()
