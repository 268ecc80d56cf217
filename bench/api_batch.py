"""Batch submit through the HTTP API: jobs/s of N batches of 1,000 (the suite's "api"
workload, batch part only), on PostgreSQL + Redis; or a profile of it in-process.

    python -m bench.api_batch --redis-url redis://127.0.0.1:6395/0 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/batch_bench --reps 3
    python -m bench.api_batch ... --workers 2 --clients 2   # as the suite's scaled figure
    python -m bench.api_batch ... --profile        # pyinstrument, in-process (ASGI transport)
    python -m bench.api_batch ... --in-process     # in-process, with CPU seconds per job

Each repetition starts a fresh ``conveyor api`` process, warms it with one batch, then
times ``--batches`` POSTs of 1,000 jobs one after another. Redis is flushed and the jobs
table emptied before each repetition, so repetitions start alike.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import redis
from sqlalchemy import create_engine, text

from bench.suite.adapters.base import NOOP, Context
from bench.suite.adapters.conveyor import ConveyorAdapter
from bench.suite.workloads.api import BATCH, _batches, running_api


def _reset(redis_url: str, database_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE jobs CASCADE"))
        conn.execute(text("TRUNCATE job_events"))
    engine.dispose()


def http_run(adapter: ConveyorAdapter, batches: int, workers: int = 1, clients: int = 1) -> float:
    with running_api(adapter, processes=workers) as (base, headers):
        jobs, seconds = _batches(base, headers, batches, clients=clients)
    if jobs != batches * BATCH:
        raise RuntimeError(f"{jobs} of {batches * BATCH} jobs accepted")
    return jobs / seconds


def profile_run(adapter: ConveyorAdapter, batches: int, profile: bool = True) -> None:
    """The API app driven in this thread (httpx's ASGI transport, the submit called on the
    event loop instead of a worker thread) so one profiler sees every step of a batch."""
    import asyncio  # noqa: PLC0415

    import httpx  # noqa: PLC0415
    from pyinstrument import Profiler  # noqa: PLC0415

    import conveyor.api.batch  # noqa: PLC0415
    from conveyor.api import create_api  # noqa: PLC0415

    async def inline(func: Any, *args: Any) -> Any:
        return func(*args)

    conveyor.api.batch.run_in_threadpool = inline  # type: ignore[assignment]
    key = "bench-api-batch-key-0123456789"
    settings = adapter.settings.model_copy(update={"api_keys": [key]})
    api = create_api(settings, adapter.store, adapter.submitter)
    body = {"jobs": [{"task": f"bench.{NOOP}"} for _ in range(BATCH)]}
    headers = {"Authorization": f"Bearer {key}"}
    url = "http://api/api/v1/jobs/batch"

    async def post_all(client: httpx.AsyncClient, count: int) -> None:
        for _ in range(count):
            (await client.post(url, json=body, headers=headers)).raise_for_status()

    async def run() -> float:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api)) as client:
            await post_all(client, 1)  # warm-up
            began = time.perf_counter()
            if profile:
                with profiler:
                    await post_all(client, batches)
            else:
                await post_all(client, batches)
            return time.perf_counter() - began

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    began_cpu = time.process_time()
    seconds = asyncio.run(run())
    cpu = time.process_time() - began_cpu
    if profile:
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    jobs = batches * BATCH
    kind = "profiled" if profile else "not profiled"
    print(f"in-process ({kind}): {jobs / seconds:,.0f} jobs/s, {cpu / jobs * 1e6:.0f} us CPU/job")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="API processes")
    parser.add_argument("--clients", type=int, default=1, help="clients posting at once")
    parser.add_argument("--profile", action="store_true", help="in-process, pyinstrument")
    parser.add_argument("--in-process", action="store_true", help="in-process, CPU per job")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        adapter = ConveyorAdapter(Context(ns.redis_url, ns.database_url, data_dir))
        adapter.prepare()
        try:
            if ns.profile or ns.in_process:
                _reset(ns.redis_url, ns.database_url)
                profile_run(adapter, ns.batches, profile=ns.profile)
                return
            rates = []
            for rep in range(ns.reps):
                _reset(ns.redis_url, ns.database_url)
                rates.append(http_run(adapter, ns.batches, ns.workers, ns.clients))
                print(f"rep {rep + 1}: {rates[-1]:,.0f} jobs/s", flush=True)
            rates.sort()
            print(f"median of {ns.reps}: {rates[len(rates) // 2]:,.0f} jobs/s")
        finally:
            adapter.close()


if __name__ == "__main__":
    main()
