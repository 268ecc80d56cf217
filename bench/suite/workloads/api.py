"""Workload 4: conveyor's HTTP API (a real `conveyor api` process). Single submits at a
fixed rate (open loop: each request is sent on its schedule, not after the previous
answer) with p50/p99 latency, and batch submits of 1,000 jobs per request (jobs/s): by
one client to one API process (each request after the previous answer), and by two
clients at once to `conveyor api --workers 2` (one process per core of this machine)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx

from bench.suite.adapters.base import NOOP, Adapter
from bench.suite.model import CONVEYOR, Measurement
from bench.suite.probe import Reader
from bench.suite.stats import percentile, rate
from bench.suite.workloads.common import Sizes, workers

NAME = "api"
NO_API = "no HTTP API of its own"
BATCH = 1000
#: the batch measurements: (API processes, clients posting at once) and their label
ONE_PROCESS = (1, 1)
SCALED = (2, 2)
BATCH_SHAPES = {ONE_PROCESS: "1 process, 1 client", SCALED: "2 processes, 2 clients"}


def run(adapter: Adapter, reader: Reader, sizes: Sizes) -> list[Measurement]:
    single = f"{sizes.api_rate} req/s"
    if adapter.name != CONVEYOR:
        return [Measurement(NAME, "single_p99_ms", adapter.name, single, "ms", False, na=NO_API)]
    reader.reset()
    adapter.prepare()
    rates: dict[tuple[int, int], float] = {}
    with running_api(adapter) as (base, headers):
        latencies, errors = asyncio.run(_single(base, headers, sizes.api_rate, sizes.api_seconds))
        rates[ONE_PROCESS] = rate(*_batches(base, headers, sizes.api_batches))
    with running_api(adapter, processes=SCALED[0]) as (base, headers):
        rates[SCALED] = rate(*_batches(base, headers, sizes.api_batches, clients=SCALED[1]))
    notes = [f"{errors} of {len(latencies) + errors} single submits failed"] if errors else []
    measure = lambda metric, unit, higher, variant, value: Measurement(  # noqa: E731
        NAME, metric, CONVEYOR, variant, unit, higher, [value], notes=list(notes)
    )
    return [
        measure("single_p50_ms", "ms", False, single, percentile(latencies, 50)),
        measure("single_p99_ms", "ms", False, single, percentile(latencies, 99)),
        *(
            measure("batch_rate", "jobs/s", True, BATCH_SHAPES[shape], value)
            for shape, value in rates.items()
        ),
    ]


@contextmanager
def running_api(adapter: Adapter, processes: int = 1) -> Iterator[tuple[str, dict[str, str]]]:
    """A `conveyor api` command (``processes`` of them: ``--workers``) with a fresh key,
    started and answering: (jobs URL, headers)."""
    key, port = secrets.token_urlsafe(24), _free_port()
    env = {**adapter.env(), "CONVEYOR_API_KEYS": key}
    command = [sys.executable, "-m", "conveyor", "api", "--port", str(port)]
    command += ["--workers", str(processes)]
    base = f"http://127.0.0.1:{port}/api/v1/jobs"
    headers = {"Authorization": f"Bearer {key}"}
    with workers([command], env, "conveyor-api"):
        _wait_ready(base, headers)
        yield base, headers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(base: str, headers: dict[str, str], timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            httpx.get(base, headers=headers, params={"limit": 1}, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("conveyor api did not start (see var/bench/logs/conveyor-api-0.log)")


async def _single(base: str, headers: dict[str, str], per_second: int,
                  seconds: float) -> tuple[list[float], int]:  # fmt: skip
    latencies: list[float] = []
    errors = 0
    body = {"task": f"bench.{NOOP}"}

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal errors
        began = time.perf_counter()
        try:
            response = await client.post(base, json=body, headers=headers)
            ok = response.status_code == 201
        except httpx.HTTPError:
            ok = False
        if ok:
            latencies.append((time.perf_counter() - began) * 1000)
        else:
            errors += 1

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for _ in range(10):  # warm the connection pool and the server's code paths
            await one(client)
        latencies.clear()
        started, pending = time.perf_counter(), []
        for n in range(int(per_second * seconds)):
            await asyncio.sleep(max(0.0, started + n / per_second - time.perf_counter()))
            pending.append(asyncio.create_task(one(client)))
        await asyncio.gather(*pending)
    return latencies, errors


def _batches(
    base: str, headers: dict[str, str], batches: int, clients: int = 1
) -> tuple[int, float]:
    """``batches`` POSTs of 1,000 jobs, shared by ``clients`` threads, every request sent
    after its client's previous answer: (jobs accepted, seconds from the first request
    to the last answer)."""
    body = {"jobs": [{"task": f"bench.{NOOP}"} for _ in range(BATCH)]}
    shares = [batches // clients + (n < batches % clients) for n in range(clients)]
    start = threading.Barrier(clients + 1)

    def client(share: int) -> int:
        accepted = 0
        # one client: a kept-alive connection; more: a new connection per request, as
        # requests of many application servers arrive (each is accepted by whichever API
        # process is free to, where two kept-alive connections may land on one process)
        limits = httpx.Limits(max_keepalive_connections=0 if clients > 1 else None)
        with httpx.Client(timeout=60, limits=limits) as http:
            http.post(f"{base}/batch", json=body, headers=headers).raise_for_status()  # warm-up
            start.wait()
            for _ in range(share):
                response = http.post(f"{base}/batch", json=body, headers=headers)
                response.raise_for_status()
                accepted += int(response.json()["accepted"])
        return accepted

    with ThreadPoolExecutor(clients) as pool:
        done = [pool.submit(client, share) for share in shares]
        start.wait()
        began = time.perf_counter()
        accepted = sum(future.result() for future in done)
        return accepted, time.perf_counter() - began
