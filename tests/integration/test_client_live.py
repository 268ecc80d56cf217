"""The Python client against a live `conveyor api` and a real worker, on the embedded
default (filesystem broker + SQLite) and on Redis: submit, wait, batch, long-poll,
progress, typed errors and workflows (with the worker advancing them)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import conveyor
from conveyor.client import Client, JobFailed, Unauthorized, ValidationFailed
from conveyor.jobs import JobState
from tests.support.services import REDIS_URL, flush_redis
from tests.support.stack import Stack, running

pytestmark = pytest.mark.integration

API_KEY = "live-client-test-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, stack: Stack, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"conveyor api did not come up:\n{stack.logs()}")


@dataclass
class Live:
    client: Client
    url: str
    stack: Stack


@pytest.fixture(scope="module", params=["embedded", "redis"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    kind: str = request.param
    data_dir: Path = tmp_path_factory.mktemp(f"client_{kind}")
    overrides = {"CONVEYOR_API_KEYS": API_KEY}
    if kind == "redis":
        flush_redis(4)
        overrides["CONVEYOR_BROKER_URL"] = f"{REDIS_URL}/4"
    stack = Stack(data_dir, overrides)
    with running(stack):
        port = free_port()
        stack.start("api", "--host", "127.0.0.1", "--port", str(port), log_name="api")
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, stack)
        with Client(url, API_KEY) as client:
            yield Live(client, url, stack)


def test_submit_and_wait_for_the_result(live: Live) -> None:
    handle = live.client.submit("tests.echo", "ab", times=2)
    assert handle.job.state is JobState.QUEUED
    assert handle.result(timeout=60) == {"value": "abab"}
    assert handle.status() is JobState.SUCCEEDED


def test_failed_job_raises_job_failed_with_the_remote_error(live: Live) -> None:
    handle = live.client.submit("tests.fail", "it broke")
    with pytest.raises(JobFailed) as caught:
        handle.result(timeout=60)
    assert caught.value.error == "it broke"
    assert caught.value.error_type == "PermanentError"


def test_typed_errors(live: Live) -> None:
    with pytest.raises(conveyor.TaskNotFound):
        live.client.submit("tests.no_such_task")
    with pytest.raises(ValidationFailed) as invalid:
        live.client.submit("tests.echo", kwargs={"value": "x", "times": "many"})
    assert invalid.value.errors[0]["loc"] == ["times"]
    with Client(live.url, "not-the-key-0123456789") as stranger, pytest.raises(Unauthorized):
        stranger.submit("tests.echo", "x")


def test_submit_many_and_wait_for_all(live: Live) -> None:
    batch = live.client.submit_many(
        [{"task": "tests.add", "args": [n, n]} for n in range(20)] + [{"task": "tests.nope"}]
    )
    assert len(batch.accepted) == 20
    assert [r.code for r in batch.refused] == ["task_not_found"]
    assert [h.result(timeout=60) for h in batch.accepted] == [2 * n for n in range(20)]


def test_long_poll_returns_when_final(live: Live) -> None:
    handle = live.client.submit("tests.sleep", 0.5)
    job = live.client.get_job(handle.id, wait=30)
    assert job.state is JobState.SUCCEEDED


def test_progress_is_visible_and_followed_by_the_cli(live: Live) -> None:
    handle = live.client.submit("tests.progress", 5, pause=0.2)
    result = live.stack.conveyor("job", handle.id, "--follow", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    job = handle.wait(timeout=30)
    assert job.progress is not None
    assert (job.progress["done"], job.progress["total"]) == (5, 5)
    assert '"done": 5' in result.stdout


def _final_workflow(live: Live, workflow_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workflow = live.client.get_workflow(workflow_id)
        if workflow["state"] != "RUNNING":
            return workflow
        time.sleep(0.2)
    raise AssertionError(f"workflow {workflow_id} still running: {workflow}")


def test_workflow_chain_and_chord_run_on_the_worker(live: Live) -> None:
    spec = {
        "chain": [
            {"task": "tests.add", "args": [1, 1]},
            {
                "chord": [
                    {"task": "tests.add", "args": [10], "pass_result": True},
                    {"task": "tests.add", "args": [20], "pass_result": True},
                ],
                "body": {"task": "tests.total", "pass_result": True},
            },
        ]
    }
    started = live.client.start_workflow(spec)
    workflow = _final_workflow(live, started["id"])
    assert workflow["state"] == "SUCCEEDED", workflow
    body = workflow["tree"]["steps"][1]["body"]
    assert body["result"] == 34  # (2 + 10) + (2 + 20)


def test_failed_chord_runs_the_error_callback_and_does_not_hang(live: Live) -> None:
    spec = {
        "chord": [{"task": "tests.add", "args": [1]}, {"task": "tests.fail", "args": ["down"]}],
        "body": {"task": "tests.total", "pass_result": True},
        "on_error": {"task": "tests.record_error", "pass_result": True},
    }
    workflow = _final_workflow(live, live.client.start_workflow(spec)["id"])
    assert workflow["state"] == "FAILED"
    assert workflow["tree"]["body"]["state"] == "PENDING"
    on_error = workflow["tree"]["on_error"]
    assert on_error["state"] == "SUCCEEDED"
    assert "down" in on_error["result"]["received"]["error"]
