"""A redis-server of one test's own, on a free port: for breaking the broker (shutting it
down, filling its memory, restarting it) without touching the shared server other tests
use."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.procs import free_port
from tests.support.services import in_ci
from tests.support.waiting import wait_until


@dataclass
class PrivateRedis:
    """One redis-server (nothing kept on disk) on ``port``; ``start`` again after a stop
    serves the same URL."""

    binary: str
    directory: Path
    port: int = field(default_factory=free_port)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.directory)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.servers.append(server)
        client = redis.Redis.from_url(self.url)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            # (a server that exited, e.g. its port taken meanwhile, ends the wait too)
            wait_until(lambda: answers() or server.poll() is not None, 10, "redis-server up")
        finally:
            client.close()
        if server.poll() is not None:
            raise RuntimeError(f"redis-server on {self.port} exited ({server.returncode})")

    def stop(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait(timeout=10)


@contextmanager
def private_redis_server(directory: Path) -> Iterator[PrivateRedis]:
    """A started :class:`PrivateRedis`, stopped after. Skips (locally) or fails (CI=true)
    without a ``redis-server`` binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed"
        if in_ci():
            pytest.fail(message + " (CI=true: service tests must run)")
        pytest.skip(message)
    server = PrivateRedis(binary, directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    """The URL (db 0) of a fresh redis-server of this test's own, stopped after."""
    with private_redis_server(directory) as server:
        yield server.url
