"""`conveyor api --workers N`: N server processes on one port, each built from the same
environment (conveyor.server.server_from_environment), all writing to the one store; a
killed worker is replaced; SIGTERM stops them all; a bad count is refused."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conveyor.jobs import JobState
from conveyor.store import JobFilter, open_store
from tests.support.procs import alive, descendants, free_port
from tests.support.stack import Stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.acceptance

KEY = "api-workers-test-key-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def _servers(parent: int) -> set[int]:
    """The uvicorn worker processes below ``parent`` (not multiprocessing's tracker)."""
    found = set()
    for pid in descendants(parent):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command and b"resource_tracker" not in command:
            found.add(pid)
    return found


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _post_batches(url: str, batches: int) -> int:
    body = {"jobs": [{"task": "tests.add", "args": [n, 1]} for n in range(100)]}
    accepted = 0
    with httpx.Client(timeout=30, headers=HEADERS) as client:
        for _ in range(batches):
            response = client.post(f"{url}/api/v1/jobs/batch", json=body)
            response.raise_for_status()
            accepted += int(response.json()["accepted"])
    return accepted


def test_workers_share_the_port_and_the_store(tmp_path: Path) -> None:
    stack = Stack(tmp_path, {"CONVEYOR_API_KEYS": KEY})
    assert stack.conveyor("migrate").returncode == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    parent = stack.start("api", "--port", str(port), "--workers", "2", log_name="api")
    try:
        wait_until(lambda: _up(url), 60, "the API answering", stack.logs)
        wait_until(lambda: len(_servers(parent.pid)) == 2, 30, "two server processes", stack.logs)
        first = _servers(parent.pid)
        # four clients at once, each on its own connection: every job lands in the store
        with ThreadPoolExecutor(4) as pool:
            assert sum(pool.map(_post_batches, [url] * 4, [3] * 4)) == 1200
        store = open_store(stack.settings())
        try:
            page = store.list_jobs(JobFilter(task="tests.add"), limit=2000)
            assert len(page.items) == 1200
            assert {job.state for job in page.items} == {JobState.QUEUED}
        finally:
            store.close()
        # a worker that dies is replaced; the port keeps answering meanwhile
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: len(_servers(parent.pid)) == 2 and victim not in _servers(parent.pid),
            60,
            "the killed worker replaced",
            stack.logs,
        )
        assert _post_batches(url, 1) == 100
        # SIGTERM to the command: every process exits
        tree = descendants(parent.pid) | {parent.pid}
        os.killpg(parent.pid, signal.SIGTERM)
        parent.wait(timeout=30)
        wait_until(lambda: not any(alive(pid) for pid in tree), 15, "every process gone")
    finally:
        stack.stop_all()
    assert parent.returncode == 0, stack.logs()


def test_a_bad_worker_count_is_refused(tmp_path: Path) -> None:
    stack = Stack(tmp_path, {"CONVEYOR_API_KEYS": KEY})
    result = stack.conveyor("api", "--workers", "0")
    assert result.returncode == 2
    assert "Invalid value for '--workers'" in result.stderr and "0 is not in the range" in (
        result.stderr
    )
    stack = Stack(tmp_path, {"CONVEYOR_API_KEYS": KEY, "CONVEYOR_API_WORKERS": "many"})
    result = stack.conveyor("api")
    assert result.returncode == 1
    assert "invalid setting CONVEYOR_API_WORKERS: Input should be a valid integer" in result.stderr
