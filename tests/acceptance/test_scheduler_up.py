"""`conveyor up` runs the scheduler with no extra setup; `conveyor schedules` as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from conveyor.jobs import JobState
from conveyor.store.base import JobFilter
from tests.support.stack import Client, Stack

pytestmark = pytest.mark.acceptance

CONFIG = """
[schedules.heartbeat]
task = "tests.echo"
interval = 1
kwargs = { value = "beat" }
options = { queue = "default", priority = 3 }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_up_runs_configured_schedules_and_the_cli_edits_them(tmp_path: Path) -> None:
    stack = Stack(tmp_path, {"CONVEYOR_API_PORT": str(_free_port())})
    (tmp_path / "none.toml").write_text(CONFIG)  # the stack's CONVEYOR_CONFIG
    up = stack.start("up", log_name="up")
    client: Client | None = None
    try:
        deadline = time.monotonic() + 60
        done = []
        while time.monotonic() < deadline and len(done) < 2:
            time.sleep(0.5)
            if client is None and (tmp_path / "conveyor.db").exists():
                client = Client(stack)
            if client is not None and client.store.is_migrated():
                found = client.store.list_jobs(JobFilter(task="tests.echo"), 50).items
                done = [j for j in found if j.state is JobState.SUCCEEDED]
        assert len(done) >= 2, stack.logs()[-3000:]
        assert all(j.result == {"value": "beat"} and j.priority == 3 for j in done)

        listed = stack.conveyor("schedules", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        (heartbeat,) = json.loads(listed.stdout)
        assert (heartbeat["name"], heartbeat["origin"], heartbeat["interval"]) == (
            "heartbeat",
            "config",
            1.0,
        )

        bad = stack.conveyor("schedules", "add", "x", "tests.echo", "--cron", "0 25 * * *")
        assert bad.returncode == 1
        assert "hour: 25 is out of range 0-23" in bad.stderr

        ran = stack.conveyor("schedules", "run", "heartbeat")
        assert ran.returncode == 0, ran.stderr
        job = json.loads(ran.stdout)
        assert job["task"] == "tests.echo" and job["kwargs"] == {"value": "beat"}
        assert client is not None
        assert client.wait(job["id"]).state is JobState.SUCCEEDED
    finally:
        if client is not None:
            client.close()
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGTERM)
        stack.stop_all()
