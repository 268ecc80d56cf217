"""`conveyor up --example NAME` as a newcomer runs it: one command in an empty folder,
the example's jobs flow (seen through the API), Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import alive, descendants, free_port

pytestmark = pytest.mark.acceptance

FINAL = ("SUCCEEDED", "FAILED", "DEAD", "CANCELLED")


def _env(home: Path, **extra: str) -> dict[str, str]:
    # no PYTHONPATH: `up --example` must make examples/ importable for its processes itself
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_") and k != "PYTHONPATH"
    }
    env.update({"CONVEYOR_CONFIG": str(home / "none.toml"), **extra})
    return env


def _conveyor(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=home,
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_unknown_example_is_one_line_listing_the_available_ones(tmp_path: Path) -> None:
    done = _conveyor(tmp_path, "up", "--example", "nope")
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "unknown example 'nope'" in line
    assert "mentorhub" in line and "microservice" in line
    assert not (tmp_path / "var").exists()  # nothing was started or created


def test_list_examples(tmp_path: Path) -> None:
    done = _conveyor(tmp_path, "up", "--list-examples")
    assert done.returncode == 0, done.stderr
    names = {line.split()[0] for line in done.stdout.splitlines()}
    assert {"microservice", "mentorhub"} <= names
    assert "seed 003" in done.stdout


@dataclass
class Running:
    proc: subprocess.Popen[str]
    url: str
    key: str
    log: Path

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", headers=self.headers(), timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.post(f"{self.url}{path}", headers=self.headers(), json=body, timeout=30)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def wait_final(self, job_id: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job: dict[str, Any] = self.get(f"/api/v1/jobs/{job_id}")
            if job["state"] in FINAL:
                return job
            time.sleep(0.3)
        raise AssertionError(f"job {job_id} not final:\n{self.log.read_text()[-3000:]}")

    def wait_for(self, what: str, check: Any, timeout: float = 90) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.3)
        raise AssertionError(f"never saw {what}:\n{self.log.read_text()[-3000:]}")

    def stop_with_ctrl_c(self) -> None:
        tree = descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in tree):
            time.sleep(0.2)
        assert not [pid for pid in tree if alive(pid)]


def _start(home: Path, example: str, **extra: str) -> Iterator[Running]:
    port = free_port()
    env = _env(home, CONVEYOR_API_PORT=str(port), **extra)
    log = home / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "up", "--example", example],
            cwd=home,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"conveyor up exited early:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no API:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
        key = (home / "var" / "dev-api-key").read_text().strip()
        yield Running(proc, url, key, log)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def microservice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    home = tmp_path_factory.mktemp("microservice")
    yield from _start(
        home,
        "microservice",
        MICROSERVICE_STANDIN_PORT=str(free_port()),
        MICROSERVICE_MAILSINK_PORT=str(free_port()),
    )


def test_microservice_says_its_data_is_synthetic_and_where_to_look(microservice: Running) -> None:
    text = microservice.log.read_text()
    assert "SYNTHETIC" in text
    assert f"dashboard on {microservice.url}/dashboard" in text
    assert "STAND-IN" in text


def test_microservice_schedules_are_stored(microservice: Running) -> None:
    def names() -> set[str]:
        items = microservice.get("/api/v1/schedules")
        items = items["items"] if isinstance(items, dict) else items
        return {s["name"] for s in items if s["name"].startswith("microservice.")}

    found = microservice.wait_for(
        "the microservice schedules", lambda: len(names()) == 4 and names()
    )
    assert found == {
        "microservice.daily_maintenance_task",
        "microservice.update_exchange_rates_task",
        "microservice.send_daily_digest_task",
        "microservice.system_health_check_task",
    }


def test_microservice_scheduled_health_check_succeeds_against_the_stand_in(
    microservice: Running,
) -> None:
    test_microservice_schedules_are_stored(microservice)
    job = microservice.post("/api/v1/schedules/microservice.system_health_check_task/run")
    done = microservice.wait_final(job["id"])
    assert done["state"] == "SUCCEEDED", done
    assert done["result"]["healthy"] is True
    assert set(done["result"]["services"].values()) == {200}


def test_microservice_jobs_flow(microservice: Running) -> None:
    data = microservice.post(
        "/api/v1/jobs",
        {
            "task": "microservice.process_user_data_task",
            "kwargs": {"user_id": 1, "data_type": "profile_update", "data": {"name": "X"}},
        },
    )
    mail = microservice.post(
        "/api/v1/jobs",
        {
            "task": "microservice.send_email_task",
            "kwargs": {"to_email": "a@example.invalid", "subject": "Hi", "body": "Hello"},
        },
    )
    imported = microservice.post(
        "/api/v1/jobs",
        {
            "task": "microservice.batch_data_import_task",
            "kwargs": {"source": "var/microservice/imports/synthetic-records.csv"},
        },
    )
    assert microservice.wait_final(data["id"])["state"] == "SUCCEEDED"
    assert microservice.wait_final(mail["id"])["state"] == "SUCCEEDED"  # into the mail sink
    done = microservice.wait_final(imported["id"])
    assert done["state"] == "SUCCEEDED", done
    assert done["result"]["inserted"] == 20 and done["result"]["rejected"] == 1
    assert "mail sink: <microservice@example.invalid> -> <a@example.invalid>: Hi" in (
        microservice.log.read_text()
    )


def test_microservice_ctrl_c_stops_everything(microservice: Running) -> None:
    tree = descendants(microservice.proc.pid)
    assert len(tree) >= 6  # api, scheduler, worker + pool, backend stand-in, mail sink
    microservice.stop_with_ctrl_c()


@pytest.fixture
def mentorhub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    home = tmp_path_factory.mktemp("mentorhub")
    yield from _start(home, "mentorhub", MENTORHUB_MAILSINK_PORT=str(free_port()))


def test_mentorhub_books_synthetic_sessions_and_reminds_the_near_ones(mentorhub: Running) -> None:
    def settled() -> list[dict[str, Any]]:
        page = mentorhub.get("/api/v1/jobs?task=mentorhub.send_session_reminder_task&limit=50")
        jobs: list[dict[str, Any]] = page["items"]
        states = sorted(job["state"] for job in jobs)
        return jobs if states == ["SCHEDULED"] * 4 + ["SUCCEEDED"] * 2 else []

    jobs = mentorhub.wait_for("two reminders sent and four held", settled)
    sent = [job for job in jobs if job["state"] == "SUCCEEDED"]
    assert all(job["result"]["sent"] == 1 for job in sent)
    assert mentorhub.log.read_text().count("mail sink: <mentorhub@example.invalid>") == 2
    mentorhub.stop_with_ctrl_c()


@pytest.fixture
def mluvme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    home = tmp_path_factory.mktemp("mluvme")
    yield from _start(home, "mluvme")


def test_mluvme_jobs_flow_from_synthetic_activity_and_its_schedules(mluvme: Running) -> None:
    text = mluvme.log.read_text()
    assert "SYNTHETIC" in text and "mluvme.send_daily_reminders/run" in text

    def demo_ran() -> list[dict[str, Any]]:
        page = mluvme.get("/api/v1/jobs?task=mluvme.simulate_activity&state=SUCCEEDED")
        return list(page["items"])

    (first, *_) = mluvme.wait_for("the synthetic activity job", demo_ran)
    assert first["result"]["synthetic"] is True

    # the seed's 18:00 fan-out, run now: one dry-run reminder per active synthetic user
    job = mluvme.post("/api/v1/schedules/mluvme.send_daily_reminders/run")
    done = mluvme.wait_final(job["id"])
    assert done["state"] == "SUCCEEDED", done
    assert done["result"]["count"] >= 1
    reminder = mluvme.wait_final(done["result"]["job_ids"][0])
    assert reminder["task"] == "mluvme.send_streak_reminder"
    assert reminder["state"] == "SUCCEEDED", reminder
    mluvme.stop_with_ctrl_c()
