"""``/api/v1/schedules``: create, read, edit, pause/resume, run now, delete; errors and scopes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conveyor.api import create_api
from conveyor.engine import create_app
from conveyor.keys import create_key
from conveyor.settings import load_settings
from conveyor.store.base import JobFilter
from conveyor.store.memory import MemoryStore
from conveyor.submit import Submitter
from conveyor.task import task


@task(name="apisched.report")
def report(day: str, detailed: bool = False) -> str:
    return day


@task(name="apisched.ping")
def ping() -> None:
    return None


class Api:
    def __init__(self, tmp_path: Path) -> None:
        settings = load_settings(
            data_dir=tmp_path / "var",
            broker_url="memory://",
            database_url="memory://",
            result_backend="cache+memory://",
        )
        self.store = MemoryStore()
        submitter = Submitter(settings, self.store, create_app(settings))
        self.client = TestClient(create_api(settings, self.store, submitter))
        self.read_key, _ = create_key(self.store, "reader", ["read"])
        self.write_key, _ = create_key(self.store, "writer", ["write"])

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {key or self.write_key}"}
        url = "/api/v1/schedules" + path
        return self.client.request(method, url, json=body, headers=headers)


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return Api(tmp_path)


DAILY = {
    "name": "daily-report",
    "task": "apisched.report",
    "kwargs": {"day": "today"},
    "cron": "0 8 * * *",
    "timezone": "Europe/Prague",
    "options": {"queue": "analytics", "priority": 4},
}


def test_create_get_list(api: Api) -> None:
    created = api.call("POST", "", DAILY)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["name"] == "daily-report"
    assert body["cron"] == "0 8 * * *" and body["interval"] is None and body["at"] is None
    assert body["timezone"] == "Europe/Prague"
    assert body["options"] == {"queue": "analytics", "priority": 4}
    assert body["enabled"] is True and body["missed"] == "skip" and body["origin"] == "api"
    assert body["version"] == 1 and body["next_run_at"] is not None
    assert body["last_run_at"] is None and body["last_job_id"] is None
    assert api.call("GET", "/daily-report", key=api.read_key).json() == body
    listed = api.call("GET", "", key=api.read_key)
    assert listed.status_code == 200
    assert listed.json() == {"items": [body]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cron": "61 8 * * *"}, "minute: 61 is out of range 0-59"),
        ({"cron": "0 8 * *"}, "5 fields"),
        ({"timezone": "Europe/Atlantis"}, "unknown time zone 'Europe/Atlantis'"),
        ({"cron": None}, "exactly one of cron, interval, at"),
        ({"interval": 60}, "exactly one of cron, interval, at (got cron, interval)"),
        ({"cron": None, "interval": 0.5}, "greater than or equal to 1"),
    ],
)
def test_invalid_schedule_is_a_422_that_says_what_is_wrong(
    api: Api, changes: dict[str, Any], message: str
) -> None:
    response = api.call("POST", "", {**DAILY, **changes})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert any(message in detail["msg"] for detail in error["details"]), error
    assert api.store.list_schedules() == []


def test_arguments_are_validated_like_a_submit(api: Api) -> None:
    response = api.call("POST", "", {**DAILY, "kwargs": {"day": 5, "extra": 1}})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_arguments"
    locs = sorted(tuple(d["loc"]) for d in response.json()["error"]["details"])
    assert locs == [("day",), ("extra",)]
    unknown_queue = api.call("POST", "", {**DAILY, "options": {"queue": "nope"}})
    assert unknown_queue.status_code == 422
    assert unknown_queue.json()["error"]["code"] == "submit_refused"
    unknown_task = api.call("POST", "", {**DAILY, "task": "no.such"})
    assert unknown_task.status_code == 404
    assert unknown_task.json()["error"]["code"] == "task_not_found"
    assert api.store.list_schedules() == []


def test_duplicate_name_is_a_409(api: Api) -> None:
    assert api.call("POST", "", DAILY).status_code == 201
    response = api.call("POST", "", {**DAILY, "cron": "0 9 * * *"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "schedule_exists"


def test_patch_changes_fields_and_a_new_timing_replaces_the_old(api: Api) -> None:
    api.call("POST", "", DAILY)
    response = api.call("PATCH", "/daily-report", {"interval": 30})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["cron"], body["interval"], body["version"]) == (None, 30, 2)
    assert body["kwargs"] == {"day": "today"}  # untouched fields stay
    response = api.call("PATCH", "/daily-report", {"kwargs": {"day": "mon", "detailed": True}})
    assert response.json()["kwargs"] == {"day": "mon", "detailed": True}
    assert response.json()["interval"] == 30
    response = api.call("PATCH", "/daily-report", {"at": "2030-01-01T09:00:00+01:00"})
    assert response.json()["at"] == "2030-01-01T08:00:00Z"
    assert response.json()["next_run_at"] == "2030-01-01T08:00:00Z"


def test_patch_errors(api: Api) -> None:
    api.call("POST", "", DAILY)
    bad_cron = api.call("PATCH", "/daily-report", {"cron": "* * * * mon-sun"})
    assert bad_cron.status_code == 422
    assert "day of week: range 'mon-sun' goes backwards" in bad_cron.text
    bad_zone = api.call("PATCH", "/daily-report", {"timezone": "Moon/Base"})
    assert bad_zone.status_code == 422
    assert "unknown time zone 'Moon/Base'" in bad_zone.text
    two = api.call("PATCH", "/daily-report", {"cron": "0 1 * * *", "interval": 5})
    assert two.status_code == 422
    assert two.json()["error"]["code"] == "invalid_schedule"
    assert "exactly one of cron, interval, at" in two.json()["error"]["message"]
    bad_args = api.call("PATCH", "/daily-report", {"kwargs": {}})
    assert bad_args.status_code == 422
    assert bad_args.json()["error"]["code"] == "invalid_arguments"
    unknown = api.call("PATCH", "/nope", {"interval": 5})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "schedule_not_found"
    stored = api.call("GET", "/daily-report").json()
    assert stored["version"] == 1 and stored["cron"] == "0 8 * * *"


def test_pause_resume_run_delete(api: Api) -> None:
    api.call("POST", "", DAILY)
    paused = api.call("POST", "/daily-report/pause")
    assert paused.status_code == 200
    assert paused.json()["enabled"] is False and paused.json()["next_run_at"] is None
    resumed = api.call("POST", "/daily-report/resume")
    assert resumed.json()["enabled"] is True and resumed.json()["next_run_at"] is not None
    run = api.call("POST", "/daily-report/run")
    assert run.status_code == 201
    job = run.json()
    assert (job["task"], job["kwargs"], job["queue"], job["priority"], job["state"]) == (
        "apisched.report",
        {"day": "today"},
        "analytics",
        4,
        "QUEUED",
    )
    assert [j.id for j in api.store.list_jobs(JobFilter(), 10).items] == [job["id"]]
    after = api.call("GET", "/daily-report").json()
    assert after["last_job_id"] == job["id"] and after["last_run_at"] is not None
    assert after["next_run_at"] == resumed.json()["next_run_at"]  # timing unchanged
    deleted = api.call("DELETE", "/daily-report")
    assert deleted.status_code == 204
    assert api.call("GET", "/daily-report").status_code == 404
    for path in ("/daily-report/run", "/daily-report/pause", "/daily-report/resume"):
        assert api.call("POST", path).status_code == 404
    assert api.call("DELETE", "/daily-report").status_code == 404


def test_scopes(api: Api) -> None:
    assert api.call("POST", "", DAILY, key=api.read_key).status_code == 403
    assert api.call("POST", "", DAILY).status_code == 201
    assert api.call("GET", "", key=api.read_key).status_code == 200
    for method, path in (
        ("PATCH", "/daily-report"),
        ("DELETE", "/daily-report"),
        ("POST", "/daily-report/run"),
        ("POST", "/daily-report/pause"),
        ("POST", "/daily-report/resume"),
    ):
        body = {"interval": 5} if method == "PATCH" else None
        response = api.call(method, path, body, key=api.read_key)
        assert response.status_code == 403, (method, path)
    no_key = api.client.get("/api/v1/schedules")
    assert no_key.status_code == 401


def test_openapi_documents_the_schedules_endpoints(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # one error format
    paths = spec["paths"]
    assert set(paths["/api/v1/schedules"]) == {"get", "post"}
    assert set(paths["/api/v1/schedules/{name}"]) == {"get", "patch", "delete"}
    for action in ("run", "pause", "resume"):
        assert "post" in paths[f"/api/v1/schedules/{{name}}/{action}"]
