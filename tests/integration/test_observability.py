"""Observability against real processes: `conveyor api` + `conveyor worker`.

Live events over SSE (with reconnect by Last-Event-ID), metrics after known jobs,
signed completion callbacks received by a local HTTP server, the workers list and
readiness — on the embedded default and on Redis + PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from conveyor.store import open_store
from tests.support.http import Receiver, http_receiver
from tests.support.services import REDIS_URL, flush_redis, fresh_postgres_database
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

KEY = "observability-test-key-0123456789"
SECRET = "observability-webhook-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Deployment:
    stack: Stack
    base: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {KEY}"}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.base + path, headers=self.headers, timeout=10, **kwargs)

    def submit(self, task: str, **body: Any) -> dict[str, Any]:
        response = httpx.post(
            self.base + "/api/v1/jobs",
            json={"task": task, **body},
            headers=self.headers,
            timeout=10,
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def wait(self, job_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/api/v1/jobs/{job_id}").json()
            if job["state"] in ("SUCCEEDED", "FAILED", "DEAD", "CANCELLED"):
                return dict(job)
            time.sleep(0.1)
        raise AssertionError(f"job {job_id} not final after {timeout}s")


def _wait_until_up(deployment: Deployment) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(deployment.base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("API did not come up:\n" + deployment.stack.logs())


def _wait_for_worker(deployment: Deployment) -> None:
    deadline = time.monotonic() + 30
    last = None
    while time.monotonic() < deadline:
        last = deployment.get("/api/v1/workers")
        # a worker still starting may make the broadcast fail (503): ask again
        if last.status_code == 200 and last.json()["items"]:
            return
        time.sleep(0.3)
    answer = f"{last.status_code} {last.text}" if last is not None else "no answer"
    raise AssertionError(f"no worker answered ({answer}):\n" + deployment.stack.logs())


@pytest.fixture(scope="module", params=["embedded", "redis+postgres"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    kind: str = request.param
    data_dir = tmp_path_factory.mktemp("obs_" + kind.replace("+", "_"))
    port = _free_port()
    overrides = {
        "CONVEYOR_API_KEYS": KEY,
        "CONVEYOR_API_PORT": str(port),
        "CONVEYOR_WEBHOOK_SECRET": SECRET,
        "CONVEYOR_READYZ_REQUIRE_WORKERS": "true",
        "CONVEYOR_INSPECT_TIMEOUT": "1",
    }
    if kind == "embedded":
        yield from _deploy(Stack(data_dir, overrides), port)
        return
    flush_redis(5)
    with fresh_postgres_database() as db_url:
        overrides.update(
            {
                "CONVEYOR_BROKER_URL": f"{REDIS_URL}/5",
                "CONVEYOR_RESULT_BACKEND": f"{REDIS_URL}/5",
                "CONVEYOR_DATABASE_URL": db_url,
            }
        )
        yield from _deploy(Stack(data_dir, overrides), port)


def _deploy(stack: Stack, port: int) -> Iterator[Deployment]:
    store = open_store(stack.settings())  # in-process: one interpreter start fewer
    store.migrate()
    store.close()
    stack.start("worker", "-c", "2", log_name="worker")
    stack.start("api", log_name="api")
    deployment = Deployment(stack, f"http://127.0.0.1:{port}")
    try:
        _wait_until_up(deployment)
        _wait_for_worker(deployment)
        yield deployment
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


# -- SSE --------------------------------------------------------------------------------
@dataclass
class SseEvent:
    id: int
    event: str
    data: dict[str, Any]


def _read_events(response: httpx.Response, job_ids: str | list[str], until: str) -> list[SseEvent]:
    """Events of the stream until every job of ``job_ids`` reaches state ``until``."""
    waiting = {job_ids} if isinstance(job_ids, str) else set(job_ids)
    events: list[SseEvent] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if "data" in fields:
            event = SseEvent(int(fields["id"]), fields["event"], json.loads(fields["data"]))
            events.append(event)
            if event.data["state"] == until:
                waiting.discard(event.data["job_id"])
            if not waiting:
                return events
        fields = {}
    raise AssertionError(f"stream ended before {waiting} became {until}: {events}")


def _stream(deployment: Deployment, params: dict[str, str], last_id: int | None = None) -> Any:
    headers = dict(deployment.headers)
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    return httpx.stream(
        "GET",
        deployment.base + "/api/v1/events",
        params=params,
        headers=headers,
        timeout=httpx.Timeout(20, connect=5),
    )


def test_sse_streams_state_changes_and_resumes_with_last_event_id(
    deployment: Deployment,
) -> None:
    tag = uuid.uuid4().hex
    with _stream(deployment, {"task": "tests.echo"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        first = deployment.submit("tests.echo", kwargs={"value": tag})
        seen = _read_events(response, first["id"], "SUCCEEDED")
    mine = [e for e in seen if e.data["job_id"] == first["id"]]
    assert [e.data["state"] for e in mine] == ["QUEUED", "STARTED", "SUCCEEDED"]
    assert all(e.event == "job" and e.data["task"] == "tests.echo" for e in seen)
    assert mine[1].data["data"]["attempt"] == 1
    last_id = seen[-1].id

    # while nobody listens, two more jobs run; a reconnecting client gets every event
    missed = [deployment.submit("tests.echo", kwargs={"value": f"{tag}-{n}"}) for n in range(2)]
    other = deployment.submit("tests.async_add", kwargs={"x": 1, "y": 2})
    for job in [*missed, other]:
        deployment.wait(job["id"])
    with _stream(deployment, {"task": "tests.echo"}, last_id=last_id) as response:
        resumed = _read_events(response, [job["id"] for job in missed], "SUCCEEDED")
    assert all(e.id > last_id for e in resumed)
    assert all(e.data["job_id"] != other["id"] for e in resumed)  # filtered by task
    for job in missed:
        states = [e.data["state"] for e in resumed if e.data["job_id"] == job["id"]]
        assert states == ["QUEUED", "STARTED", "SUCCEEDED"]


def test_sse_filters_by_job_id(deployment: Deployment) -> None:
    with _stream(deployment, {"job_id": "placeholder"}) as response:
        assert response.status_code == 200
    before = deployment.submit("tests.echo", kwargs={"value": "x"})
    deployment.wait(before["id"])
    target = deployment.submit("tests.fail", kwargs={"message": "boom"})
    with _stream(deployment, {"job_id": target["id"]}, last_id=0) as response:
        events = _read_events(response, target["id"], "FAILED")
    assert {e.data["job_id"] for e in events} == {target["id"]}
    assert events[-1].data["data"]["error_type"] == "PermanentError"


# -- metrics ------------------------------------------------------------------------------
def test_metrics_count_jobs_run_by_the_worker(deployment: Deployment) -> None:
    before = deployment.get("/api/v1/metrics/tasks").json()["by_task"]
    echo_before = before.get("tests.echo", {"executed": 0})["executed"]
    fail_before = before.get("tests.fail", {"failed": 0})["failed"]
    jobs = [deployment.submit("tests.echo", kwargs={"value": str(n)}) for n in range(3)]
    jobs.append(deployment.submit("tests.fail", kwargs={"message": "x"}))
    for job in jobs:
        deployment.wait(job["id"])
    after = deployment.get("/api/v1/metrics/tasks").json()
    assert after["by_task"]["tests.echo"]["executed"] == echo_before + 3
    assert after["by_task"]["tests.fail"]["failed"] == fail_before + 1
    assert after["total_executed"] >= 4

    text = deployment.get("/metrics").text
    assert "conveyor_jobs_finished_total{" in text
    assert "conveyor_workers_online 1.0" in text
    assert 'conveyor_queue_depth{queue="default"} 0.0' in text
    assert 'conveyor_metrics_source_up{source="broker"} 1.0' in text
    finished = [x for x in text.splitlines() if x.startswith("conveyor_jobs_finished_total{")]
    echo = [x for x in finished if 'task="tests.echo"' in x and 'state="SUCCEEDED"' in x]
    assert len(echo) == 1
    assert float(echo[0].rsplit(" ", 1)[1]) == after["by_task"]["tests.echo"]["executed"]


# -- callbacks ----------------------------------------------------------------------------
def test_completion_callback_is_signed_and_recorded(
    deployment: Deployment, receiver: Receiver
) -> None:
    path = f"/callback-{uuid.uuid4().hex}"
    job = deployment.submit("tests.echo", kwargs={"value": "cb"}, callback_url=receiver.url + path)
    deadline = time.monotonic() + 30
    while not receiver.to(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    (request,) = receiver.to(path)
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["X-Conveyor-Signature"], expected)
    payload = json.loads(request.body)
    assert (payload["id"], payload["state"]) == (job["id"], "SUCCEEDED")
    assert payload["result"] == {"value": "cb"}
    deadline = time.monotonic() + 10
    callbacks: list[dict[str, Any]] = []
    while not callbacks and time.monotonic() < deadline:
        callbacks = deployment.get(f"/api/v1/jobs/{job['id']}").json()["callbacks"]
        time.sleep(0.1)
    assert [(c["attempt"], c["ok"], c["status_code"]) for c in callbacks] == [(1, True, 200)]


# -- workers and readiness ----------------------------------------------------------------
def test_workers_lists_the_running_worker_and_its_active_jobs(deployment: Deployment) -> None:
    job = deployment.submit("tests.sleep", kwargs={"seconds": 3})
    deadline = time.monotonic() + 20
    workers: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        workers = deployment.get("/api/v1/workers").json()["items"]
        if any(job["id"] in w["active_job_ids"] for w in workers):
            break
        time.sleep(0.2)
    (worker,) = workers
    assert worker["name"].startswith("conveyor-")
    assert job["id"] in worker["active_job_ids"]
    assert worker["concurrency"] == 2
    assert set(deployment.stack.settings().queues) <= set(worker["queues"])
    assert worker["last_heartbeat"]
    assert httpx.get(deployment.base + "/api/v1/workers").status_code == 401
    deployment.wait(job["id"])


def test_readyz_checks_broker_store_and_workers(deployment: Deployment) -> None:
    response = httpx.get(deployment.base + "/readyz", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["failed"] == []
    assert set(body["checks"]) == {"broker", "store", "workers"}
