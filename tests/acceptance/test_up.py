"""`conveyor up` as a user runs it: one command, the whole service, Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.http import Receiver, http_receiver
from tests.support.procs import alive, descendants, free_port
from tests.support.stack import ROOT

pytestmark = pytest.mark.acceptance


@dataclass
class Service:
    proc: subprocess.Popen[str]
    url: str
    key: str
    data_dir: Path
    env: dict[str, str]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            env=self.env,
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )


def _wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "conveyor up exited early"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("API never answered /healthz")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    home = tmp_path_factory.mktemp("up")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(
        {
            "CONVEYOR_API_PORT": str(port),
            "CONVEYOR_CONFIG": str(home / "none.toml"),
            "PYTHONPATH": str(ROOT),
        }
    )
    # no CONVEYOR_DATA_DIR: the embedded default lives under ./var of the working directory
    with (home / "up.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "up"],
            cwd=home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        key = (home / "var" / "dev-api-key").read_text().strip()
        assert key in (home / "up.log").read_text()  # printed once for the user
        yield Service(proc, url, key, home / "var", env)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


def test_embedded_default_lives_under_var(service: Service) -> None:
    assert (service.data_dir / "conveyor.db").exists()
    assert (service.data_dir / "broker" / "queue").is_dir()
    mode = stat.S_IMODE((service.data_dir / "dev-api-key").stat().st_mode)
    assert mode == 0o600


def _wait_final(service: Service, job_id: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, object] = httpx.get(
            f"{service.url}/api/v1/jobs/{job_id}", headers=service.headers()
        ).json()
        if body["state"] in ("SUCCEEDED", "FAILED", "DEAD", "CANCELLED"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not final")


def test_webhook_job_over_http_succeeds(service: Service, receiver: Receiver) -> None:
    response = httpx.post(
        f"{service.url}/api/v1/jobs",
        headers=service.headers(),
        json={
            "task": "webhook.post",
            "kwargs": {"url": receiver.url + "/http", "payload": {"n": 1}},
        },
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "QUEUED"
    done = _wait_final(service, job["id"])
    assert done["state"] == "SUCCEEDED", done
    (request,) = receiver.to("/http")
    assert request.json() == {"n": 1}


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, {"task": "webhook.post"}, 401),
        ({"Authorization": "Bearer wrong-key-0123456789"}, {"task": "webhook.post"}, 401),
        (None, {"task": "no.such.task"}, 404),
        (None, {"task": "webhook.post", "kwargs": {"url": "not a url", "payload": {}}}, 422),
        (None, {"task": "webhook.post", "kwargs": {"payload": {}}}, 422),
    ],
)
def test_bad_input_gets_its_status_and_enqueues_nothing(
    service: Service, headers: dict[str, str] | None, body: dict[str, object], status: int
) -> None:
    before = httpx.get(f"{service.url}/api/v1/jobs?limit=500", headers=service.headers()).json()
    response = httpx.post(
        f"{service.url}/api/v1/jobs",
        headers=service.headers() if headers is None else headers,
        json=body,
    )
    assert response.status_code == status, response.text
    assert "error" in response.json()
    after = httpx.get(f"{service.url}/api/v1/jobs?limit=500", headers=service.headers()).json()
    assert len(after["items"]) == len(before["items"])


def test_malformed_json_and_oversized_body(service: Service) -> None:
    headers = {**service.headers(), "Content-Type": "application/json"}
    bad = httpx.post(f"{service.url}/api/v1/jobs", headers=headers, content=b'{"task": ')
    assert bad.status_code == 400
    huge = json.dumps({"task": "webhook.post", "kwargs": {"pad": "x" * (2 * 1024 * 1024)}})
    too_big = httpx.post(f"{service.url}/api/v1/jobs", headers=headers, content=huge)
    assert too_big.status_code == 413


def test_cli_submit_wait_and_job(service: Service, receiver: Receiver) -> None:
    kwargs = json.dumps({"url": receiver.url + "/cli", "payload": {"via": "cli"}})
    submitted = service.cli("submit", "webhook.post", "--kwargs", kwargs, "--wait")
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["state"] == "SUCCEEDED"
    shown = service.cli("job", job["id"])
    assert json.loads(shown.stdout)["id"] == job["id"]
    refused = service.cli("submit", "webhook.post", "--kwargs", '{"payload": {}}')
    assert refused.returncode != 0
    assert "url" in refused.stderr
    assert len(receiver.to("/cli")) == 1


def test_ctrl_c_stops_every_process(service: Service) -> None:
    tree = descendants(service.proc.pid)
    assert len(tree) >= 4  # api, scheduler, worker and its pool
    service.proc.send_signal(signal.SIGINT)
    service.proc.wait(timeout=60)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in tree):
        time.sleep(0.2)
    assert not [pid for pid in tree if alive(pid)]
