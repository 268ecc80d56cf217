"""A redis-server of one test's own, on a free port: for breaking the broker (shutting it
down, filling its memory) without touching the shared server other tests use."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.support.procs import free_port
from tests.support.services import in_ci


@contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    """A fresh redis-server (nothing kept on disk); yields its URL (db 0), stops it after.
    Skips (locally) or fails (CI=true) without a ``redis-server`` binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed"
        if in_ci():
            pytest.fail(message + " (CI=true: service tests must run)")
        pytest.skip(message)
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(directory)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        server.kill()
        server.wait(timeout=10)
