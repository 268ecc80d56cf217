"""Workload 4: conveyor's HTTP API (a real `conveyor api` process). Single submits at a
fixed rate (open loop: each request is sent on its schedule, not after the previous
answer) with p50/p99 latency, and batch submits of 1,000 jobs per request (jobs/s)."""

from __future__ import annotations

import asyncio
import secrets
import socket
import sys
import time
from collections.abc import Iterator
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


def run(adapter: Adapter, reader: Reader, sizes: Sizes) -> list[Measurement]:
    single = f"{sizes.api_rate} req/s"
    if adapter.name != CONVEYOR:
        return [Measurement(NAME, "single_p99_ms", adapter.name, single, "ms", False, na=NO_API)]
    reader.reset()
    adapter.prepare()
    with running_api(adapter) as (base, headers):
        latencies, errors = asyncio.run(_single(base, headers, sizes.api_rate, sizes.api_seconds))
        jobs, seconds = _batches(base, headers, sizes.api_batches)
    notes = [f"{errors} of {len(latencies) + errors} single submits failed"] if errors else []
    measure = lambda metric, unit, higher, variant, value: Measurement(  # noqa: E731
        NAME, metric, CONVEYOR, variant, unit, higher, [value], notes=list(notes)
    )
    return [
        measure("single_p50_ms", "ms", False, single, percentile(latencies, 50)),
        measure("single_p99_ms", "ms", False, single, percentile(latencies, 99)),
        measure("batch_rate", "jobs/s", True, f"{BATCH:,} per request", rate(jobs, seconds)),
    ]


@contextmanager
def running_api(adapter: Adapter) -> Iterator[tuple[str, dict[str, str]]]:
    """A `conveyor api` process with a fresh key, started and answering: (jobs URL, headers)."""
    key, port = secrets.token_urlsafe(24), _free_port()
    env = {**adapter.env(), "CONVEYOR_API_KEYS": key}
    command = [sys.executable, "-m", "conveyor", "api", "--port", str(port)]
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


def _batches(base: str, headers: dict[str, str], batches: int) -> tuple[int, float]:
    body = {"jobs": [{"task": f"bench.{NOOP}"} for _ in range(BATCH)]}
    accepted = 0
    with httpx.Client(timeout=60) as client:
        client.post(f"{base}/batch", json=body, headers=headers).raise_for_status()  # warm-up
        began = time.perf_counter()
        for _ in range(batches):
            response = client.post(f"{base}/batch", json=body, headers=headers)
            response.raise_for_status()
            accepted += int(response.json()["accepted"])
        return accepted, time.perf_counter() - began
