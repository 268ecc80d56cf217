"""Reliability through the HTTP API, in one process (in-memory store, inline runs).

Retries → DEAD → dead letter → replay, attempts on GET, idempotent and unique
submits, cancellation, long delays held in the store, the worker's gate and
the hard-time-limit handling of ConveyorTask.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from billiard.einfo import ExceptionInfo
from celery.exceptions import TimeLimitExceeded
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from conveyor.api import create_api
from conveyor.delays import release_due
from conveyor.engine import create_app
from conveyor.errors import TemporaryError
from conveyor.jobs import JobState, utcnow
from conveyor.keys import create_key
from conveyor.policies.retry import RetryPolicy
from conveyor.runtime import install_runtime
from conveyor.scheduler import ConveyorScheduler
from conveyor.settings import Settings, load_settings
from conveyor.store.base import JobFilter
from conveyor.store.memory import MemoryStore
from conveyor.submit import SubmitRequest, Submitter
from conveyor.task import task
from conveyor.timeouts import TimeoutInfo, _current

RUNS: list[str] = []


@task(name="reltest.fragile", retry=RetryPolicy(max_retries=2, base_delay=0, jitter=False))
def fragile(fail: bool, note: str = "") -> str:
    RUNS.append(f"fragile:{fail}")
    if fail:
        raise TemporaryError("still broken")
    return f"fixed{note}"


@task(name="reltest.plain")
def plain(x: int) -> int:
    RUNS.append(f"plain:{x}")
    if x < 0:
        raise ValueError("negative")
    return x


@task(name="reltest.unique", unique=True, unique_on=("user_id",))
def unique(user_id: int, text: str) -> str:
    return text


@task(name="reltest.overtime", retry=RetryPolicy(max_retries=1, base_delay=0, jitter=False))
def overtime() -> None:
    return None


class Env:
    def __init__(self, tmp_path: Path, *, inline: bool, **overrides: Any) -> None:
        self.settings: Settings = load_settings(
            data_dir=tmp_path / "var",
            broker_url="memory://",
            database_url="memory://",
            result_backend="cache+memory://",
            **overrides,
        )
        self.store = MemoryStore()
        self.app = create_app(self.settings)
        install_runtime(self.app, self.settings, self.store, synchronous=True)
        self.submitter = Submitter(self.settings, self.store, self.app, inline=inline)
        self.client = TestClient(create_api(self.settings, self.store, self.submitter))
        self.key, _ = create_key(self.store, "writer", ["write"])
        self.headers = {"Authorization": f"Bearer {self.key}"}

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(path, json=body, headers=self.headers)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers)

    def submit(self, body: dict[str, Any]) -> Any:
        return self.post("/api/v1/jobs", body)


@pytest.fixture
def inline(tmp_path: Path) -> Iterator[Env]:
    RUNS.clear()
    env = Env(tmp_path, inline=True)
    with env.client:
        yield env


@pytest.fixture
def queued(tmp_path: Path) -> Iterator[Env]:
    """Submits are recorded and published to an in-memory broker, nothing runs."""
    RUNS.clear()
    env = Env(tmp_path, inline=False, delay_threshold=5, delay_horizon=3600)
    with env.client:
        yield env


# -- retries, attempts, dead letters, replay -------------------------------------------
def test_retries_then_dead_then_replay_succeeds(inline: Env) -> None:
    response = inline.submit({"task": "reltest.fragile", "kwargs": {"fail": True}})
    assert response.status_code == 201, response.text
    dead = response.json()
    assert dead["state"] == "DEAD"
    assert dead["attempt_count"] == 3
    assert [a["state"] for a in dead["attempts"]] == ["RETRYING", "RETRYING", "DEAD"]
    assert [a["attempt"] for a in dead["attempts"]] == [1, 2, 3]
    assert dead["attempts"][2]["reason"] == "exhausted"
    assert dead["attempts"][0]["error_type"] == "TemporaryError"
    assert "still broken" in dead["attempts"][0]["traceback"]

    listing = inline.get("/api/v1/dead-letters").json()
    (entry,) = listing["items"]
    assert entry["id"] == dead["id"]
    assert entry["kwargs"] == {"fail": True}
    assert entry["error_type"] == "TemporaryError"
    assert entry["reason"] == "exhausted"
    assert len(entry["attempts"]) == 3

    replayed = inline.post(
        f"/api/v1/dead-letters/{dead['id']}/replay", {"kwargs": {"fail": False, "note": "!"}}
    )
    assert replayed.status_code == 201, replayed.text
    job = replayed.json()
    assert job["state"] == "SUCCEEDED"
    assert job["result"] == "fixed!"
    assert job["replay_of"] == dead["id"]
    assert job["id"] != dead["id"]
    assert inline.get(f"/api/v1/jobs/{job['id']}").json()["replay_of"] == dead["id"]

    again = inline.post(f"/api/v1/dead-letters/{dead['id']}/replay")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_replayed"
    entry = inline.get(f"/api/v1/dead-letters/{dead['id']}").json()
    assert entry["replayed_job_id"] == job["id"]


def test_replay_with_invalid_kwargs_is_422_and_keeps_the_entry(inline: Env) -> None:
    dead = inline.submit({"task": "reltest.fragile", "kwargs": {"fail": True}}).json()
    response = inline.post(
        f"/api/v1/dead-letters/{dead['id']}/replay", {"kwargs": {"fail": "not a bool"}}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_arguments"
    entry = inline.store.get_dead_letter(dead["id"])
    assert entry is not None and entry.replayed_job_id is None
    assert len(inline.store.list_jobs(JobFilter(), 10).items) == 1


def test_submit_retry_override(inline: Env) -> None:
    body = {"task": "reltest.fragile", "kwargs": {"fail": True}, "retry": {"max_retries": 0}}
    job = inline.submit(body).json()
    assert job["state"] == "DEAD"
    assert job["retry"] == {"max_retries": 0}
    assert len(job["attempts"]) == 1
    # a task without a policy gets one from the submit, so it dead-letters too
    body = {"task": "reltest.plain", "kwargs": {"x": -1}, "retry": {"max_retries": 1}}
    job = inline.submit(body).json()
    assert (job["state"], job["attempt_count"]) == ("DEAD", 2)


@pytest.mark.parametrize(
    "retry",
    [{"max_retries": 101}, {"max_retries": -1}, {"base_delay": -1}, {"factor": 3}],
)
def test_invalid_retry_override_is_422(inline: Env, retry: dict[str, Any]) -> None:
    response = inline.submit({"task": "reltest.plain", "kwargs": {"x": 1}, "retry": retry})
    assert response.status_code == 422
    assert inline.store.list_jobs(JobFilter(), 10).items == []


def test_task_without_policy_fails_without_dead_letter(inline: Env) -> None:
    job = inline.submit({"task": "reltest.plain", "kwargs": {"x": -1}}).json()
    assert job["state"] == "FAILED"
    assert job["attempts"][0]["reason"] == "no_retry_policy"
    assert inline.get("/api/v1/dead-letters").json()["items"] == []


def test_success_has_one_attempt(inline: Env) -> None:
    job = inline.submit({"task": "reltest.plain", "kwargs": {"x": 2}}).json()
    (attempt,) = job["attempts"]
    assert (attempt["state"], attempt["attempt"], attempt["error"]) == ("SUCCEEDED", 1, None)
    assert attempt["started_at"] and attempt["finished_at"]
    listed = inline.get("/api/v1/jobs").json()["items"][0]
    assert listed["attempts"] == job["attempts"]


def test_dead_letter_filters_pages_delete_and_bulk_replay(inline: Env) -> None:
    ids = [
        inline.submit({"task": "reltest.fragile", "kwargs": {"fail": True}}).json()["id"]
        for _ in range(3)
    ]
    inline.submit({"task": "reltest.plain", "kwargs": {"x": -5}, "retry": {"max_retries": 0}})
    assert len(inline.get("/api/v1/dead-letters", task="reltest.fragile").json()["items"]) == 3
    assert len(inline.get("/api/v1/dead-letters", error_type="ValueError").json()["items"]) == 1
    assert inline.get("/api/v1/dead-letters", queue="email").json()["items"] == []
    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert inline.get("/api/v1/dead-letters", since=future).json()["items"] == []
    assert len(inline.get("/api/v1/dead-letters", until=future).json()["items"]) == 4
    first = inline.get("/api/v1/dead-letters", limit=3).json()
    second = inline.get("/api/v1/dead-letters", limit=3, cursor=first["next_cursor"]).json()
    assert len(first["items"]) == 3 and len(second["items"]) == 1
    assert second["next_cursor"] is None
    bad = inline.get("/api/v1/dead-letters", cursor="garbage")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"

    deleted = inline.client.delete(f"/api/v1/dead-letters/{ids[0]}", headers=inline.headers)
    assert deleted.status_code == 204
    gone = inline.client.delete(f"/api/v1/dead-letters/{ids[0]}", headers=inline.headers)
    assert gone.status_code == 404

    bulk = inline.post("/api/v1/dead-letters/replay", {"task": "reltest.fragile"})
    assert bulk.status_code == 200, bulk.text
    result = bulk.json()
    assert sorted(r["dead_letter_id"] for r in result["replayed"]) == sorted(ids[1:])
    assert result["failed"] == []
    # the replays failed again: they are new dead letters, the replayed ones are not replayed twice
    again = inline.post("/api/v1/dead-letters/replay", {"task": "reltest.fragile"}).json()
    assert len(again["replayed"]) == 2
    assert not {r["dead_letter_id"] for r in again["replayed"]} & set(ids)


def test_replay_missing_dead_letter_is_404(inline: Env) -> None:
    response = inline.post("/api/v1/dead-letters/nope/replay")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "dead_letter_not_found"


def test_retention_trims_on_death(tmp_path: Path) -> None:
    env = Env(tmp_path, inline=True, dead_letter_max_entries=2)
    for _ in range(4):
        env.submit({"task": "reltest.fragile", "kwargs": {"fail": True}})
    # trimmed before each new entry is written: at most max + 1 at any time
    assert len(env.get("/api/v1/dead-letters").json()["items"]) <= 3


# -- idempotency and unique jobs ------------------------------------------------------
def test_idempotency_key_returns_the_first_job_with_200(queued: Env) -> None:
    body = {"task": "reltest.plain", "kwargs": {"x": 1}, "idempotency_key": "order-42"}
    first = queued.submit(body)
    second = queued.submit({**body, "kwargs": {"x": 2}})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["kwargs"] == {"x": 1}
    assert len(queued.store.list_jobs(JobFilter(), 10).items) == 1


def test_idempotency_key_expires_after_ttl(tmp_path: Path) -> None:
    env = Env(tmp_path, inline=False, idempotency_ttl=0.05)
    body = {"task": "reltest.plain", "kwargs": {"x": 1}, "idempotency_key": "k"}
    first = env.submit(body).json()
    time.sleep(0.1)
    second = env.submit(body)
    assert second.status_code == 201
    assert second.json()["id"] != first["id"]


def test_parallel_submits_with_one_key_make_one_job(queued: Env) -> None:
    body = {"task": "reltest.plain", "kwargs": {"x": 1}, "idempotency_key": "burst"}
    statuses: list[int] = []
    barrier = threading.Barrier(20)

    def submit() -> None:
        barrier.wait()
        statuses.append(queued.submit(body).status_code)

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] * 19 + [201]
    assert len(queued.store.list_jobs(JobFilter(), 100).items) == 1


def test_unique_task_returns_the_active_job(queued: Env) -> None:
    first = queued.submit({"task": "reltest.unique", "kwargs": {"user_id": 1, "text": "a"}})
    same = queued.submit({"task": "reltest.unique", "kwargs": {"user_id": 1, "text": "b"}})
    other = queued.submit({"task": "reltest.unique", "kwargs": {"user_id": 2, "text": "a"}})
    assert (first.status_code, same.status_code, other.status_code) == (201, 200, 201)
    assert same.json()["id"] == first.json()["id"]
    assert queued.post(f"/api/v1/jobs/{first.json()['id']}/cancel").status_code == 200
    after = queued.submit({"task": "reltest.unique", "kwargs": {"user_id": 1, "text": "c"}})
    assert after.status_code == 201 and after.json()["id"] != first.json()["id"]


# -- cancellation ----------------------------------------------------------------------
def test_cancel_queued_job_then_it_never_runs(queued: Env) -> None:
    job = queued.submit({"task": "reltest.plain", "kwargs": {"x": 7}}).json()
    response = queued.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "CANCELLED"
    # the message is still in the broker: a worker gets it and the gate skips it
    with capture_logs() as logs:
        queued.app.tasks["reltest.plain"].apply(kwargs={"x": 7}, task_id=job["id"])
    assert RUNS == []
    assert [e["event"] for e in logs if e.get("event") == "job_skipped"] == ["job_skipped"]
    stored = queued.store.get_job(job["id"])
    assert stored is not None and stored.state is JobState.CANCELLED


def test_cancel_finished_job_is_409(inline: Env) -> None:
    job = inline.submit({"task": "reltest.plain", "kwargs": {"x": 1}}).json()
    response = inline.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "job_finished"


def test_cancel_running_job_needs_terminate(queued: Env) -> None:
    job = queued.submit({"task": "reltest.plain", "kwargs": {"x": 1}}).json()
    queued.store.mark_started(job["id"], 1, "w1")
    refused = queued.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "job_running"
    assert "terminate" in refused.json()["error"]["message"]
    done = queued.post(f"/api/v1/jobs/{job['id']}/cancel", {"terminate": True})
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "CANCELLED"
    assert done.json()["attempts"][0]["reason"] == "terminated"


def test_cancel_missing_job_is_404(queued: Env) -> None:
    assert queued.post("/api/v1/jobs/nope/cancel").status_code == 404


# -- long delays -------------------------------------------------------------------------
def test_long_delay_is_held_then_released_once(queued: Env) -> None:
    short = queued.submit({"task": "reltest.plain", "kwargs": {"x": 1}, "countdown": 4}).json()
    long = queued.submit({"task": "reltest.plain", "kwargs": {"x": 1}, "countdown": 60}).json()
    assert short["state"] == "QUEUED"
    assert long["state"] == "SCHEDULED"
    assert release_due(queued.store, queued.submitter) == 0
    later = utcnow() + timedelta(seconds=61)
    assert release_due(queued.store, queued.submitter, now=later) == 1
    assert release_due(queued.store, queued.submitter, now=later) == 0
    stored = queued.store.get_job(long["id"])
    assert stored is not None and stored.state is JobState.QUEUED


def test_scheduled_job_can_be_cancelled_and_is_not_released(queued: Env) -> None:
    job = queued.submit({"task": "reltest.plain", "kwargs": {"x": 1}, "countdown": 60}).json()
    assert queued.post(f"/api/v1/jobs/{job['id']}/cancel").json()["state"] == "CANCELLED"
    later = utcnow() + timedelta(seconds=61)
    assert release_due(queued.store, queued.submitter, now=later) == 0


def test_eta_beyond_horizon_is_422(queued: Env) -> None:
    eta = (utcnow() + timedelta(hours=2)).isoformat()
    response = queued.submit({"task": "reltest.plain", "kwargs": {"x": 1}, "eta": eta})
    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "submit_refused",
        "message": response.json()["error"]["message"],
        "details": {"field": "eta"},
    }
    assert queued.store.list_jobs(JobFilter(), 10).items == []


def test_eta_in_the_past_runs_now(queued: Env) -> None:
    eta = (utcnow() - timedelta(days=1)).isoformat()
    job = queued.submit({"task": "reltest.plain", "kwargs": {"x": 1}, "eta": eta}).json()
    assert job["state"] == "QUEUED" and job["scheduled_for"] is None


def test_scheduler_pass_releases_due_jobs(tmp_path: Path) -> None:
    """The scheduler's leader calls release_due on every pass (ConveyorScheduler.extra_ticks)."""
    assert release_due in ConveyorScheduler.extra_ticks
    queued = Env(tmp_path, inline=False, delay_threshold=0.1)
    job = queued.submitter.submit(
        SubmitRequest(task="reltest.plain", kwargs={"x": 1}, countdown=0.3)
    )
    assert job.state is JobState.SCHEDULED
    assert release_due(queued.store, queued.submitter) == 0  # not due yet
    time.sleep(0.35)
    assert release_due(queued.store, queued.submitter) == 1
    assert release_due(queued.store, queued.submitter) == 0  # never twice
    current = queued.store.get_job(job.id)
    assert current is not None and current.state is JobState.QUEUED


# -- hard time limit (what the worker's main process does) --------------------------------
def _hard_timeout(env: Env, job_id: str, retries: int) -> None:
    info = TimeoutInfo(retries=retries, queue="default", priority=None, hostname="w@h", limit=1)
    token = _current.set(info)
    try:
        try:
            raise TimeLimitExceeded(1.0)
        except TimeLimitExceeded as exc:
            einfo = ExceptionInfo()
            env.app.tasks["reltest.overtime"].on_failure(exc, job_id, [], {}, einfo)
    finally:
        _current.reset(token)


def test_hard_time_limit_records_attempt_and_follows_policy(queued: Env) -> None:
    job = queued.submitter.submit(SubmitRequest(task="reltest.overtime"))
    queued.store.mark_started(job.id, 1, "w@h")
    _hard_timeout(queued, job.id, retries=0)
    stored = queued.store.get_job(job.id)
    assert stored is not None and stored.state is JobState.RETRYING
    queued.store.mark_started(job.id, 2, "w@h")
    _hard_timeout(queued, job.id, retries=1)
    stored = queued.store.get_job(job.id)
    assert stored is not None and stored.state is JobState.DEAD
    attempts = queued.store.list_attempts([job.id])[job.id]
    assert [(a.state, a.reason) for a in attempts] == [
        (JobState.RETRYING, "time_limit"),
        (JobState.DEAD, "time_limit"),
    ]
    entry = queued.store.get_dead_letter(job.id)
    assert entry is not None and entry.reason == "time_limit"
    assert entry.error_type == "TimeLimitExceeded"
