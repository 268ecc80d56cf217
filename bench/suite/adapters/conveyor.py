"""conveyor: the product under test (recording to a PostgreSQL job store, every default hook)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench.suite.adapters.base import (
    ASYNC,
    GREENLETS,
    PREFORK,
    PROCESSES,
    THREADS,
    THREADS_PER_WORKER,
    Adapter,
    Context,
    version,
)
from conveyor.engine import create_app
from conveyor.logs import configure_logging
from conveyor.pools import pool_for, pool_size
from conveyor.settings import Settings, load_settings
from conveyor.store import open_store
from conveyor.submit import SubmitRequest, Submitter

IMPORTS = "bench.suite.workers.conveyor_tasks"
#: delays longer than this are held in the store and released by the scheduler; the
#: default (300 s) would make the workload wait five minutes, so it is lowered
DELAY_THRESHOLD = "5"
RELEASE_AHEAD_ENV = "BENCH_CONVEYOR_RELEASE_AHEAD"
POOL_ARGS = {
    PREFORK: ["-P", "prefork", "-c", str(PROCESSES)],
    THREADS: ["-P", "threads", "-c", str(THREADS_PER_WORKER)],
    ASYNC: ["-P", "gevent", "-c", str(GREENLETS)],
}


class ConveyorAdapter(Adapter):
    name = "conveyor"
    pools = dict.fromkeys(POOL_ARGS)
    io_queue = "notifications"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.settings = self._settings()
        configure_logging(self.settings)  # WARNING, as an application's producer would log
        self.store = open_store(self.settings)
        self.app = create_app(self.settings)
        self.submitter = Submitter(self.settings, self.store, self.app)
        #: None: each task's own queue
        self.queue: str | None = None

    def _settings(self) -> Settings:
        __import__(IMPORTS)
        return load_settings(
            data_dir=Path(self.ctx.data_dir),
            broker_url=self.ctx.redis_url,
            database_url=self.ctx.database_url,
            result_backend=self.ctx.redis_url,
            imports=[IMPORTS],
            log_level="WARNING",
            delay_threshold=float(DELAY_THRESHOLD),
        )

    def env(self, pool: str | None = None) -> dict[str, str]:
        env = self.ctx.env()
        env.update(
            {
                "CONVEYOR_DATA_DIR": self.ctx.data_dir,
                "CONVEYOR_CONFIG": str(Path(self.ctx.data_dir) / "none.toml"),
                "CONVEYOR_IMPORTS": IMPORTS,
                "CONVEYOR_BROKER_URL": self.ctx.redis_url,
                "CONVEYOR_DATABASE_URL": self.ctx.database_url,
                # as the README's production setup (the default is a SQLite file)
                "CONVEYOR_RESULT_BACKEND": self.ctx.redis_url,
                "CONVEYOR_LOG_LEVEL": "WARNING",
                "CONVEYOR_DELAY_THRESHOLD": DELAY_THRESHOLD,
            }
        )
        # an experiment knob (unset: the product's default, 0): BENCH_CONVEYOR_RELEASE_AHEAD=1
        ahead = os.environ.get(RELEASE_AHEAD_ENV)
        if ahead:
            env["CONVEYOR_RELEASE_AHEAD"] = ahead
        return env

    def version(self) -> str:
        return version("conveyor", "celery", "kombu")

    def flags(self) -> str:
        return (
            "`conveyor worker -P prefork -c 2` (threads: `-P threads -c 16`, gevent: "
            "`-P gevent -c 100`; chosen pool: `conveyor worker -Q notifications`, no -P/-c); "
            "its defaults: late acks, prefetch 4, recording batched to "
            "PostgreSQL (record_before_ack on), Celery results in Redis (as the README's "
            "production setup), every default hook; delays: "
            f"`conveyor scheduler`, CONVEYOR_DELAY_THRESHOLD={DELAY_THRESHOLD}"
            + (
                f", CONVEYOR_RELEASE_AHEAD={ahead}"
                if (ahead := os.environ.get(RELEASE_AHEAD_ENV))
                else ""
            )
        )

    def prepare(self) -> None:
        self.store.migrate()

    def worker_commands(self, pool: str) -> list[list[str]]:
        return [[sys.executable, "-m", "conveyor", "worker", "-Q", "default", *POOL_ARGS[pool]]]

    def io_queue_commands(self) -> list[list[str]]:
        return [[sys.executable, "-m", "conveyor", "worker", "-Q", self.io_queue]]

    def io_queue_pool(self) -> str:
        settings = self.settings
        pool = pool_for([self.io_queue], settings.queue_pools, settings.worker_pool)
        size = pool_size(pool, True, settings.worker_concurrency, settings.worker_io_concurrency)
        return f"`conveyor worker -Q {self.io_queue}` runs {pool} -c {size or 'CPUs'}"

    @contextmanager
    def sending_to(self, queue: str) -> Iterator[None]:
        self.queue = queue
        try:
            yield
        finally:
            self.queue = None

    def delay_commands(self) -> list[list[str]]:
        return [*self.default_commands(), [sys.executable, "-m", "conveyor", "scheduler"]]

    def enqueue(self, task: str, args: tuple[object, ...]) -> None:
        self.submitter.submit(SubmitRequest(f"bench.{task}", args=args, queue=self.queue))

    def enqueue_bulk(self, task: str, argsets: list[tuple[object, ...]]) -> None:
        # the API's batch path: rows written in one transaction, sent over one connection
        self.submitter.submit_many(
            [SubmitRequest(f"bench.{task}", args=args, queue=self.queue) for args in argsets]
        )

    def enqueue_at(self, task: str, argsets: list[tuple[object, ...]], due: float) -> None:
        eta = datetime.fromtimestamp(due, UTC)
        chunk = 1000
        for start in range(0, len(argsets), chunk):
            jobs = [
                self.submitter.build(SubmitRequest(f"bench.{task}", args=args, eta=eta))
                for args in argsets[start : start + chunk]
            ]
            self.store.create_jobs(jobs)  # held (SCHEDULED) rows, as submit writes them

    def released_by(self, due: float) -> bool:
        """Whether no job due by ``due`` is held (SCHEDULED) in the store any more: the
        scheduler has claimed every one of them (each claim is published right after)."""
        held = self.store.next_due_at()
        return held is None or held.timestamp() > due

    def close(self) -> None:
        self.store.close()
