"""Benchmark: drain N no-op jobs, conveyor against plain Celery on the same broker.

Not a test. For each side (``conveyor`` with its recording and hooks on, and
``celery``: plain Celery with the same pool, concurrency, late acks and
prefetch, no result backend), one producer enqueues N jobs with the workers
stopped (enqueue rate), then the workers start and drain the queue. The drain
rate is N / (first task start -> last task finish), measured in every pool
process by Celery's ``task_prerun``/``task_postrun`` signals (bench/drain_probe.py),
the same way on both sides. For conveyor the job store must then hold every job
as SUCCEEDED.

Usage::

    python -m bench.drain [--redis-url URL] [--pool prefork|threads|solo|gevent]
                          [-c 2] [--jobs 5000] [--workers 1] [--repeat 3]
                          [--store sqlite|postgres] [--side both|conveyor|celery]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
import redis

from bench.drain_celery import BROKER_ENV, PLAIN_QUEUE, TASK, plain_noop
from bench.drain_probe import PROBE_ENV, read
from bench.suite.procs import cpu_seconds, tree
from conveyor.engine import create_app, import_task_modules
from conveyor.jobs import JobState
from conveyor.logs import configure_logging
from conveyor.settings import load_settings
from conveyor.store import open_store
from conveyor.store.base import JobFilter
from conveyor.submit import SubmitRequest, Submitter

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = "bench.drain_tasks"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
#: where workers' output goes (set BENCH_WORKER_LOG=FILE to keep it)
_LOG = (
    open(os.environ["BENCH_WORKER_LOG"], "ab")  # noqa: SIM115 (kept open for the whole run)
    if os.environ.get("BENCH_WORKER_LOG")
    else subprocess.DEVNULL
)


@dataclass(frozen=True)
class Options:
    redis_url: str = "redis://127.0.0.1:6379/5"
    pool: str = "prefork"
    concurrency: int = 2
    jobs: int = 5000
    workers: int = 1
    store: str = "sqlite"
    repeat: int = 1
    sides: tuple[str, ...] = ("celery", "conveyor")
    timeout: float = 600.0
    #: conveyor's CONVEYOR_TASK_EVENTS (Celery task events for Flower; plain Celery: off)
    task_events: bool = True
    #: extra CONVEYOR_* settings for the conveyor side (e.g. CONVEYOR_RECORD_BEFORE_ACK=false)
    conveyor_env: tuple[tuple[str, str], ...] = ()


@dataclass
class Run:
    side: str
    enqueue_rate: float
    drain_rate: float
    drain_seconds: float
    finished: int
    recorded: int | None = None
    #: CPU ms per job of the worker processes (and, for conveyor on PostgreSQL, of the
    #: store's backends) between the first job seen and the last: steadier than the rate
    #: on a busy machine
    cpu_ms_per_job: float | None = None


@dataclass
class Summary:
    side: str
    runs: list[Run] = field(default_factory=list)

    @property
    def drain_median(self) -> float:
        return statistics.median(r.drain_rate for r in self.runs)

    @property
    def enqueue_median(self) -> float:
        return statistics.median(r.enqueue_rate for r in self.runs)

    def as_dict(self) -> dict[str, object]:
        drains = [r.drain_rate for r in self.runs]
        return {
            "side": self.side,
            "drain_rate_median": round(self.drain_median, 1),
            "drain_rate_min": round(min(drains), 1),
            "drain_rate_max": round(max(drains), 1),
            "enqueue_rate_median": round(self.enqueue_median, 1),
            "runs": [asdict(r) for r in self.runs],
        }


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update({"PYTHONPATH": str(ROOT), **extra})
    return env


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        env=env,
        cwd=ROOT,
        stdout=_LOG,
        stderr=_LOG,
        start_new_session=True,
    )


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _cpu(roots: list[int], database: str) -> float:
    """CPU seconds used so far by the worker trees under ``roots`` and by PostgreSQL's
    backends serving ``database`` (the job store's share of the work)."""
    total = sum(cpu_seconds(pid, with_reaped=pid == root) for root in roots for pid in tree(root))
    if database:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
            ).fetchall()
        total += sum(cpu_seconds(int(row[0])) for row in rows)
    return total


def _commits(database: str) -> int:
    """Transactions committed in ``database`` so far (each statement outside one counts)."""
    if not database:
        return 0
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def _drain(
    options: Options,
    client: redis.Redis,
    start: Callable[[], list[subprocess.Popen[bytes]]],
    database: str = "",
) -> tuple[float, float, int, float]:
    """(first start, last end, jobs done, CPU ms per job from the first job to the last)."""
    client.delete("bench:drain:probe")
    procs = start()
    roots = [p.pid for p in procs]
    cpu_first: float | None = None
    done_first = 0
    try:
        deadline = time.monotonic() + options.timeout
        while time.monotonic() < deadline:
            count = read(client)[2]
            if cpu_first is None and count > 0:
                cpu_first, done_first = _cpu(roots, database), count
            if count >= options.jobs:
                break
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a worker exited during the run")
            time.sleep(0.2)
        time.sleep(0.2)  # the probe's last report
        first, last, count = read(client)
        used = _cpu(roots, database) - (cpu_first or 0.0)
        per_job = 1000 * used / max(count - done_first, 1)
        return first, last, count, round(per_job, 3)
    finally:
        _stop(procs)


def _worker_flags(options: Options) -> list[str]:
    return ["-P", options.pool, "-c", str(options.concurrency)]


def run_celery(options: Options, client: redis.Redis) -> Run:
    client.flushdb()
    began = time.monotonic()
    for n in range(options.jobs):
        plain_noop.apply_async(kwargs={"n": n})
    enqueue = options.jobs / (time.monotonic() - began)
    env = _env({BROKER_ENV: options.redis_url, PROBE_ENV: options.redis_url})

    def start() -> list[subprocess.Popen[bytes]]:
        return [
            _spawn(
                [
                    "celery",
                    "-A",
                    "bench.drain_celery:plain",
                    "worker",
                    *_worker_flags(options),
                    "-Q",
                    PLAIN_QUEUE,
                    "-n",
                    f"plain{n}@%h",
                    "-l",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                ],
                env,
            )
            for n in range(options.workers)
        ]

    first, last, count, cpu = _drain(options, client, start)
    seconds = max(last - first, 1e-9)
    return Run(
        "celery", round(enqueue, 1), round(count / seconds, 1), round(seconds, 3), count, None, cpu
    )


class _Store:
    """A fresh job store for one conveyor run (SQLite file or a new PostgreSQL database)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.data_dir = Path(tempfile.mkdtemp(prefix="conveyor-drain-"))
        self.database = ""
        self.url = ""
        if kind == "postgres":
            self.database = f"conveyor_drain_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.database}"')
            self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.database}"

    def close(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.database:
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def run_conveyor(options: Options, client: redis.Redis) -> Run:

    client.flushdb()
    target = _Store(options.store)
    env = _env(
        {
            "CONVEYOR_DATA_DIR": str(target.data_dir),
            "CONVEYOR_IMPORTS": IMPORTS,
            "CONVEYOR_CONFIG": str(target.data_dir / "none.toml"),
            "CONVEYOR_LOG_LEVEL": "WARNING",
            "CONVEYOR_BROKER_URL": options.redis_url,
            "CONVEYOR_DATABASE_URL": target.url,
            "CONVEYOR_TASK_EVENTS": "true" if options.task_events else "false",
            **dict(options.conveyor_env),
            PROBE_ENV: options.redis_url,
        }
    )
    try:
        subprocess.run([sys.executable, "-m", "conveyor", "migrate"], env=env, cwd=ROOT, check=True)
        settings = load_settings(
            data_dir=target.data_dir,
            broker_url=options.redis_url,
            database_url=target.url,
            imports=[IMPORTS],
            log_level="WARNING",
        )
        configure_logging(settings)
        import_task_modules(settings)
        store = open_store(settings)
        app = create_app(settings)
        submitter = Submitter(settings, store, app)
        began = time.monotonic()
        for n in range(options.jobs):
            submitter.submit(SubmitRequest(TASK, kwargs={"n": n}))
        enqueue = options.jobs / (time.monotonic() - began)

        def start() -> list[subprocess.Popen[bytes]]:
            return [
                _spawn(["conveyor", "worker", *_worker_flags(options), "-n", f"drain{n}@%h"], env)
                for n in range(options.workers)
            ]

        commits = _commits(target.database)
        first, last, count, cpu = _drain(options, client, start, target.database)
        if target.database:
            per_job = (_commits(target.database) - commits) / max(count, 1)
            print(f"conveyor: {per_job:.2f} PostgreSQL transactions per job", file=sys.stderr)
        page = store.list_jobs(JobFilter(task=TASK), options.jobs + 1)
        states = Counter(job.state.value for job in page.items)
        recorded = states.get(JobState.SUCCEEDED.value, 0)
        if recorded != options.jobs:
            print(f"conveyor: job states in the store {dict(states)}", file=sys.stderr)
        store.close()
    finally:
        target.close()
    seconds = max(last - first, 1e-9)
    return Run(
        "conveyor",
        round(enqueue, 1),
        round(count / seconds, 1),
        round(seconds, 3),
        count,
        recorded,
        cpu,
    )


def run(options: Options) -> dict[str, object]:
    client = redis.Redis.from_url(options.redis_url)
    plain_noop.app.conf.broker_url = options.redis_url
    summaries = {side: Summary(side) for side in options.sides}
    for _ in range(options.repeat):
        for side in options.sides:
            result = (run_celery if side == "celery" else run_conveyor)(options, client)
            print(json.dumps(asdict(result)), file=sys.stderr)
            summaries[side].runs.append(result)
    report: dict[str, object] = {
        "flags": {
            "pool": options.pool,
            "concurrency": options.concurrency,
            "workers": options.workers,
            "jobs": options.jobs,
            "store": options.store,
            "conveyor_task_events": options.task_events,
            "conveyor_env": dict(options.conveyor_env),
        },
        "load_average": os.getloadavg(),
        "sides": [s.as_dict() for s in summaries.values()],
    }
    if "celery" in summaries and "conveyor" in summaries:
        report["drain_ratio"] = round(
            summaries["conveyor"].drain_median / summaries["celery"].drain_median, 3
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    pools = ["prefork", "threads", "solo", "gevent"]
    parser.add_argument("--pool", default="prefork", choices=pools)
    parser.add_argument("-c", "--concurrency", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=1, help="Worker processes per side.")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--side", choices=["both", "conveyor", "celery"], default="both")
    parser.add_argument("--timeout", type=float, default=600.0, help="Per drain, seconds.")
    parser.add_argument(
        "--no-task-events",
        action="store_true",
        help="Run conveyor with CONVEYOR_TASK_EVENTS=false (as plain Celery here).",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="CONVEYOR_NAME=VALUE",
        help="A setting for conveyor's workers (repeatable).",
    )
    args = parser.parse_args()
    extra = tuple(tuple(item.split("=", 1)) for item in args.env)
    if any(len(pair) != 2 or not pair[0].startswith("CONVEYOR_") for pair in extra):
        parser.error("--env takes CONVEYOR_NAME=VALUE")
    sides = ("celery", "conveyor") if args.side == "both" else (args.side,)
    options = Options(
        redis_url=args.redis_url,
        pool=args.pool,
        concurrency=args.concurrency,
        jobs=args.jobs,
        workers=args.workers,
        store=args.store,
        repeat=args.repeat,
        sides=sides,
        timeout=args.timeout,
        task_events=not args.no_task_events,
        conveyor_env=extra,  # type: ignore[arg-type]
    )
    print(json.dumps(run(options), indent=2))


if __name__ == "__main__":
    main()
