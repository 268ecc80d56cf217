"""``conveyor flower``: refuses to start without credentials; basic auth really enforced."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.acceptance

USER = "ops"
PASSWORD = "flower-test-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    result = Stack(tmp_path).conveyor("flower", timeout=60)
    assert result.returncode != 0
    assert "refusing to start Flower without authentication" in result.stderr
    assert "no default password" in result.stderr.lower()


def test_basic_auth_is_enforced(tmp_path: Path) -> None:
    port = _free_port()
    stack = Stack(
        tmp_path,
        {
            "CONVEYOR_FLOWER_USER": USER,
            "CONVEYOR_FLOWER_PASSWORD": PASSWORD,
            "CONVEYOR_FLOWER_PORT": str(port),
        },
    )
    proc = stack.start("flower", log_name="flower")
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 45
        response: httpx.Response | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert response is not None, stack.logs()
        assert response.status_code == 401
        assert "Basic" in response.headers.get("WWW-Authenticate", "")
        assert httpx.get(url, auth=(USER, "wrong-password"), timeout=5).status_code == 401
        authed = httpx.get(url, auth=(USER, PASSWORD), timeout=5)
        assert authed.status_code == 200
        assert "Flower" in authed.text
        assert PASSWORD not in " ".join(proc.args)  # type: ignore[arg-type]
    finally:
        stack.stop_all()
