"""Flow control through the API and the worker hook, on the embedded broker and memory store."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from conveyor.api import create_api
from conveyor.cli import cli
from conveyor.engine import create_app
from conveyor.gate import GateAction
from conveyor.hooks.base import RunContext
from conveyor.hooks.flow import FlowHook
from conveyor.jobs import Job, JobState, utcnow
from conveyor.keys import create_key
from conveyor.limiter import StoreLimiter
from conveyor.policies.concurrency import ConcurrencyLimit
from conveyor.settings import Settings, load_settings
from conveyor.store.base import Failure, JobFilter, StoreError
from conveyor.store.memory import MemoryStore
from conveyor.submit import SubmitRequest, Submitter
from conveyor.task import task


@task(name="flowtest.ping", rate_limit="1/m")
def ping(n: int) -> int:
    return n


@task(name="flowtest.per_user", concurrency=ConcurrencyLimit(key="user_id", limit=1))
def per_user(user_id: int) -> int:
    return user_id


@task(name="flowtest.plain", priority=7)
def plain(n: int) -> int:
    return n


class Api:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = MemoryStore()
        self.submitter = Submitter(settings, self.store, create_app(settings))
        self.client = TestClient(create_api(settings, self.store, self.submitter))
        self.write_key, _ = create_key(self.store, "writer", ["write"])
        self.read_key, _ = create_key(self.store, "reader", ["read"])

    def post(self, path: str, body: Any = None, key: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {key or self.write_key}"}
        return self.client.post(path, json=body, headers=headers)

    def queues(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.read_key}"}
        response = self.client.get("/api/v1/queues", headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(
        data_dir=tmp_path / "var",
        database_url="memory://",
        result_backend="cache+memory://",
    )
    made = Api(settings)
    with made.client:
        yield made


def by_name(listing: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in listing["items"]}


def test_queues_show_depth_on_the_embedded_broker_and_no_priorities(api: Api) -> None:
    for n in range(3):
        assert api.post("/api/v1/jobs", {"task": "flowtest.ping", "kwargs": {"n": n}}).is_success
    listing = api.queues()
    assert listing["broker"] == "filesystem"
    assert listing["priorities"] is False
    queues = by_name(listing)
    assert set(queues) == set(api.settings.queues)
    assert queues["default"]["depth"] == 3
    assert queues["email"]["depth"] == 0
    assert queues["default"] == {**queues["default"], "paused": False, "priorities": False}


def test_pause_and_resume(api: Api) -> None:
    response = api.post("/api/v1/queues/email/pause")
    assert response.status_code == 200, response.text
    assert response.json()["paused"] is True
    assert by_name(api.queues())["email"]["paused"] is True
    assert [s.name for s in api.store.list_queue_states() if s.paused] == ["email"]
    assert api.post("/api/v1/queues/email/resume").json()["paused"] is False
    assert by_name(api.queues())["email"]["paused"] is False


def test_pause_needs_write_scope_and_a_known_queue(api: Api) -> None:
    assert api.post("/api/v1/queues/email/pause", key=api.read_key).status_code == 403
    response = api.post("/api/v1/queues/nope/pause")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "queue_not_found"


def test_consumers_come_from_worker_reports(api: Api) -> None:
    api.store.record_consumers("w1@host", ["default", "email"], utcnow())
    queues = by_name(api.queues())
    assert queues["default"]["consumers"] == ["w1@host"]
    assert queues["analytics"]["consumers"] == []


def test_priority_on_the_embedded_broker_is_flagged(api: Api) -> None:
    response = api.post("/api/v1/jobs", {"task": "flowtest.plain", "kwargs": {"n": 1}})
    assert response.status_code == 201
    assert response.headers["X-Conveyor-Warning"].startswith("priority-ignored")
    response = api.post("/api/v1/jobs", {"task": "flowtest.ping", "kwargs": {"n": 1}})
    assert "X-Conveyor-Warning" not in response.headers


def test_submit_rate_limit_is_checked_and_recorded(api: Api) -> None:
    body = {"task": "flowtest.ping", "kwargs": {"n": 1}, "rate_limit": "5/S; burst=1"}
    response = api.post("/api/v1/jobs", body)
    assert response.status_code == 201, response.text
    assert response.json()["rate_limit"] == "5/s;burst=1"
    response = api.post("/api/v1/jobs", {**body, "rate_limit": "fast"})
    assert response.status_code in (400, 422)
    error = response.json()["error"]
    assert "rate" in error["message"]


# -- the worker hook ---------------------------------------------------------------


def _ctx(job_id: str, task_name: str) -> RunContext:
    return RunContext(job_id=job_id, task=task_name, queue="default", attempt=1, worker="w")


def _hook(api: Api) -> FlowHook:
    return FlowHook(api.store, StoreLimiter(api.store, 30.0, 1.0), 30.0)


def test_over_the_limit_a_job_is_deferred_as_retrying_without_an_attempt(api: Api) -> None:
    hook = _hook(api)
    first = api.submitter.submit(SubmitRequest("flowtest.ping", kwargs={"n": 1}))
    second = api.submitter.submit(SubmitRequest("flowtest.ping", kwargs={"n": 2}))
    assert hook.before_run(_ctx(first.id, "flowtest.ping")).runs
    gate = hook.before_run(_ctx(second.id, "flowtest.ping"))
    assert gate.action is GateAction.DEFER
    assert gate.reason == "rate_limited"
    assert 59 <= gate.countdown <= 60
    stored = api.store.get_job(second.id)
    assert stored is not None
    assert (stored.state, stored.reason, stored.attempts) == (JobState.RETRYING, "rate_limited", 0)


def test_the_submit_rate_replaces_the_tasks(api: Api) -> None:
    hook = _hook(api)
    jobs = [
        api.submitter.submit(SubmitRequest("flowtest.ping", kwargs={"n": n}, rate_limit="2/s"))
        for n in range(2)
    ]
    assert hook.before_run(_ctx(jobs[0].id, "flowtest.ping")).runs
    gate = hook.before_run(_ctx(jobs[1].id, "flowtest.ping"))
    assert gate.reason == "rate_limited" and gate.countdown <= 0.5


def test_a_concurrency_slot_is_held_until_the_run_ends(api: Api) -> None:
    hook = _hook(api)
    one, two, other = (
        api.submitter.submit(SubmitRequest("flowtest.per_user", kwargs={"user_id": user}))
        for user in (1, 1, 2)
    )
    assert hook.before_run(_ctx(one.id, "flowtest.per_user")).runs
    refused = hook.before_run(_ctx(two.id, "flowtest.per_user"))
    assert refused.reason == "concurrency_limited"
    assert hook.before_run(_ctx(other.id, "flowtest.per_user")).runs
    stored = api.store.get_job(two.id)
    assert stored is not None and stored.reason == "concurrency_limited"
    hook.on_failure(_ctx(one.id, "flowtest.per_user"), Failure("x", "E"), JobState.FAILED)
    assert hook.before_run(_ctx(two.id, "flowtest.per_user")).runs
    hook.on_success(_ctx(two.id, "flowtest.per_user"), 1)
    assert hook.renewer.held == {other.id: hook.renewer.held[other.id]}


# -- fan-out -----------------------------------------------------------------------


@task(name="flowtest.remind")
def remind(user_id: int) -> int:
    return user_id


def test_fanout_spaces_jobs_and_respects_quiet_hours(api: Api) -> None:
    items: list[dict[str, Any]] = [{"user_id": n} for n in range(4)]
    items.append({"user_id": 9, "timezone": "Pacific/Kiritimati"})
    body = {"task": "flowtest.remind", "items": items, "rate": "1/2s", "quiet_hours": "00:00-23:59"}
    response = api.post("/api/v1/jobs/fanout", body)
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["count"] == 5 and len(out["job_ids"]) == 5
    jobs = [api.store.get_job(job_id) for job_id in out["job_ids"]]
    assert all(job is not None for job in jobs)
    dues = [job.scheduled_for or job.created_at for job in jobs if job is not None]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(dues[:4])]
    assert gaps == pytest.approx([2.0, 2.0, 2.0], abs=0.01)
    assert {job.rate_limit for job in jobs if job is not None} == {"1/2s"}
    assert {tuple(job.kwargs) for job in jobs if job is not None} == {("user_id",)}
    # the last item is in quiet hours in its zone (all day but one minute): moved to its end
    last = jobs[-1]
    assert last is not None and last.scheduled_for is not None
    assert (last.scheduled_for - dues[0]).total_seconds() > 60


def test_fanout_refuses_everything_when_one_item_is_invalid(api: Api) -> None:
    body = {"task": "flowtest.remind", "items": [{"user_id": 1}, {"user_id": "x"}]}
    response = api.post("/api/v1/jobs/fanout", body)
    assert response.status_code == 422
    assert api.store.list_jobs(JobFilter(), 10).items == []
    for bad in ({"rate": "soon"}, {"quiet_hours": "late"}):
        response = api.post("/api/v1/jobs/fanout", {**body, "items": [{"user_id": 1}], **bad})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_fanout"


class _DownStore(MemoryStore):
    def get_job(self, job_id: str) -> Job | None:
        raise StoreError("store unreachable")


def test_when_the_limiter_cannot_be_asked_the_job_waits(api: Api) -> None:
    down = _DownStore()
    hook = FlowHook(down, StoreLimiter(down, 30.0, 1.0), 30.0)
    gate = hook.before_run(_ctx("some-job", "flowtest.ping"))
    assert (gate.action, gate.reason) == (GateAction.DEFER, "flow_unavailable")
    # without the job its per-submit override is unknown: it waits rather than run unchecked
    assert hook.before_run(_ctx("other", "flowtest.plain")).reason == "flow_unavailable"


def test_queues_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("CONVEYOR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CONVEYOR_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CONVEYOR_CONFIG", str(tmp_path / "none.toml"))
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(cli, ["queues", "pause", "email"])
    assert result.exit_code == 0, result.output
    assert "email: paused" in result.output
    listed = runner.invoke(cli, ["queues", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    text = listed.output[listed.output.index("\n[") + 1 :]  # after any log lines
    rows = {row["name"]: row for row in json.loads(text)}
    assert rows["email"]["paused"] is True and rows["default"]["paused"] is False
    assert rows["default"]["depth"] == 0 and rows["default"]["priorities"] is False
    table = runner.invoke(cli, ["queues", "list"])
    assert "paused" in table.output and "QUEUE" in table.output
    assert runner.invoke(cli, ["queues", "resume", "email"]).exit_code == 0
    unknown = runner.invoke(cli, ["queues", "pause", "nope"])
    assert unknown.exit_code != 0 and "unknown queue" in unknown.output
