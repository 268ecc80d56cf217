"""The HTTP API: auth, validation at the door, one error format, listing and paging."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from celery import Celery
from fastapi import FastAPI
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from conveyor.api import create_api
from conveyor.engine import create_app
from conveyor.jobs import Job, JobState, new_job_id, utcnow
from conveyor.keys import create_key
from conveyor.settings import Settings
from conveyor.store.base import JobFilter, JobPage, StoreError
from conveyor.store.memory import MemoryStore
from conveyor.submit import Submitter
from conveyor.task import task
from conveyor.testing import inline_settings

ENV_KEY = "apitest-configured-key-0123456789"
MAX_BODY = 2048


@task(name="apitest.add")
def add(x: int, y: int = 1) -> int:
    """Add two numbers."""
    return x + y


@task(name="apitest.notify", queue="notifications", priority=5)
async def notify(user_id: int, text: str) -> None:
    """Send a notification."""


class Env:
    """One API under test, with its store and keys."""

    def __init__(self, settings: Settings, store: MemoryStore, submitter: Submitter) -> None:
        self.settings = settings
        self.store = store
        self.app: FastAPI = create_api(settings, store, submitter)
        self.client = TestClient(self.app)
        self.read_key, _ = create_key(store, "reader", ["read"])
        self.write_key, _ = create_key(store, "writer", ["write"])
        self.admin_key, _ = create_key(store, "admin", ["admin"])

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.write_key}"}

    def submit(self, body: Any, key: str | None = None) -> Any:
        return self.client.post("/api/v1/jobs", json=body, headers=self.auth(key))

    def jobs(self) -> list[Job]:
        return self.store.list_jobs(JobFilter(), 1000).items


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return inline_settings(
        data_dir=tmp_path / "var",
        api_keys=[ENV_KEY],
        max_body_bytes=MAX_BODY,
    )


@pytest.fixture
def celery_app(settings: Settings) -> Celery:
    return create_app(settings)


@pytest.fixture
def env(settings: Settings, celery_app: Celery) -> Iterator[Env]:
    store = MemoryStore()
    env = Env(settings, store, Submitter(settings, store, celery_app))
    with env.client:
        yield env


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


# -- health and docs -------------------------------------------------------------------


def test_healthz_needs_no_auth(env: Env) -> None:
    response = env.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_documents_routes_errors_and_bearer_auth(env: Env) -> None:
    response = env.client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["info"]["title"] == "conveyor"
    assert {"/healthz", "/api/v1/jobs", "/api/v1/jobs/{job_id}", "/api/v1/tasks"} <= set(
        spec["paths"]
    )
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"]["type"] == "http"
    assert schemes["ApiKey"]["scheme"] == "bearer"
    post = spec["paths"]["/api/v1/jobs"]["post"]
    assert post["security"] == [{"ApiKey": []}]
    for status in ("400", "401", "403", "404", "413", "422", "503"):
        content = post["responses"][status]["content"]["application/json"]
        assert content["schema"]["$ref"].endswith("/ErrorBody")
    assert "ErrorBody" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    state_schema = spec["components"]["schemas"]["JobState"]
    assert len(state_schema["enum"]) == 8
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_docs_page_is_served(env: Env) -> None:
    response = env.client.get("/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text


# -- submitting ------------------------------------------------------------------------


def test_valid_submit_is_recorded_and_queued(env: Env) -> None:
    response = env.submit({"task": "apitest.add", "args": [2], "kwargs": {"y": 3}})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["state"] == "QUEUED"
    assert body["task"] == "apitest.add"
    assert body["queue"] == "default"
    assert body["args"] == [2]
    assert body["kwargs"] == {"y": 3}
    stored = env.store.get_job(body["id"])
    assert stored is not None
    assert stored.state is JobState.QUEUED
    assert stored.args == (2,)
    assert set(body) == {
        "id",
        "task",
        "queue",
        "state",
        "args",
        "kwargs",
        "priority",
        "attempts",
        "attempt_count",
        "result",
        "error",
        "error_type",
        "traceback",
        "worker",
        "created_at",
        "scheduled_for",
        "started_at",
        "finished_at",
        "updated_at",
        "callback_url",
        "callbacks",
        "retry",
        "idempotency_key",
        "replay_of",
        "progress",
        "workflow_id",
        "rate_limit",
        "reason",
    }


def test_submit_uses_task_queue_and_priority_and_countdown(env: Env) -> None:
    response = env.submit(
        {"task": "apitest.notify", "kwargs": {"user_id": 1, "text": "hi"}, "countdown": 60}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["queue"] == "notifications"
    assert body["priority"] == 5
    assert body["scheduled_for"] is not None


def test_admin_and_configured_keys_may_submit(env: Env) -> None:
    for key in (env.admin_key, ENV_KEY):
        response = env.submit({"task": "apitest.add", "args": [1]}, key=key)
        assert response.status_code == 201, response.text
    assert len(env.jobs()) == 2


def test_unknown_task_is_404_naming_it(env: Env) -> None:
    response = env.submit({"task": "apitest.nope"})
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "task_not_found"
    assert "apitest.nope" in error["message"]
    assert env.jobs() == []


def test_invalid_arguments_are_422_with_field_errors(env: Env) -> None:
    response = env.submit({"task": "apitest.add", "kwargs": {"x": "not a number"}})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_arguments"
    [field] = error["details"]
    assert field["loc"] == ["x"]
    assert field["type"] == "int_parsing"
    assert set(field) == {"loc", "msg", "type"}
    assert env.jobs() == []


def test_missing_and_unknown_arguments_are_each_reported(env: Env) -> None:
    response = env.submit({"task": "apitest.add", "kwargs": {"z": 1}})
    assert response.status_code == 422
    locs = {tuple(e["loc"]): e["type"] for e in error_of(response)["details"]}
    assert locs == {("x",): "missing", ("z",): "extra_forbidden"}


def test_malformed_json_is_400(env: Env) -> None:
    response = env.client.post(
        "/api/v1/jobs",
        content=b'{"task": "apitest.add", "args": [1,',
        headers={**env.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "malformed_json"
    assert env.jobs() == []


def test_unknown_body_field_is_422(env: Env) -> None:
    response = env.submit({"task": "apitest.add", "args": [1], "arsg": [2]})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["details"] == [
        {
            "loc": ["body", "arsg"],
            "msg": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ]


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"priority": 10}, ["body", "priority"]),
        ({"countdown": -1}, ["body", "countdown"]),
        ({"eta": "tomorrow"}, ["body", "eta"]),
        ({"args": {"x": 1}}, ["body", "args"]),
    ],
)
def test_bad_submit_options_are_422(env: Env, extra: dict[str, Any], loc: list[str]) -> None:
    response = env.submit({"task": "apitest.add", "args": [1], **extra})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert [e["loc"] for e in error["details"]] == [loc]


def test_unknown_queue_is_refused(env: Env) -> None:
    response = env.submit({"task": "apitest.add", "args": [1], "queue": "nowhere"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "submit_refused"
    assert error["details"] == {"field": "queue"}


def test_missing_key_is_401(env: Env) -> None:
    response = env.client.post("/api/v1/jobs", json={"task": "apitest.add", "args": [1]})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "cvk_abc"])
def test_malformed_authorization_header_is_401(env: Env, header: str) -> None:
    response = env.client.get("/api/v1/jobs", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "unauthorized"


def test_wrong_key_is_401(env: Env) -> None:
    response = env.submit({"task": "apitest.add", "args": [1]}, key="cvk_wrong")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "invalid_key"


def test_revoked_key_is_401(env: Env) -> None:
    plain, record = create_key(env.store, "temp", ["admin"])
    assert env.client.get("/api/v1/jobs", headers=env.auth(plain)).status_code == 200
    env.store.revoke_api_key(record.id, utcnow())
    response = env.client.get("/api/v1/jobs", headers=env.auth(plain))
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_key"


def test_read_only_key_cannot_submit(env: Env) -> None:
    response = env.submit({"task": "apitest.add", "args": [1]}, key=env.read_key)
    assert response.status_code == 403
    error = error_of(response)
    assert error["code"] == "forbidden"
    assert error["details"] == {"required_scope": "write"}


def test_body_over_limit_with_content_length_is_413(env: Env) -> None:
    body = json.dumps({"task": "apitest.add", "args": [1], "kwargs": {"y": "x" * MAX_BODY}})
    response = env.client.post(
        "/api/v1/jobs",
        content=body.encode(),
        headers={**env.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "body_too_large"
    assert error["details"] == {"max_body_bytes": MAX_BODY}
    assert "X-Request-ID" in response.headers


def test_body_of_exactly_the_limit_is_accepted(env: Env) -> None:
    head = b'{"task": "apitest.add", "args": [1], "kwargs": {}}'
    body = head + b" " * (MAX_BODY - len(head))
    assert len(body) == MAX_BODY
    response = env.client.post(
        "/api/v1/jobs", content=body, headers={**env.auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


def test_chunked_body_over_limit_is_413(env: Env) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"task": "apitest.add", "args": [1], "kwargs": {"y": "'
        for _ in range(10):
            yield b"x" * 512
        yield b'"}}'

    response = env.client.post(
        "/api/v1/jobs",
        content=chunks(),
        headers={**env.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"


def test_chunked_body_under_limit_is_accepted(env: Env) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"task": "apitest.add", '
        yield b'"args": [1]}'

    response = env.client.post(
        "/api/v1/jobs",
        content=chunks(),
        headers={**env.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


REFUSED_SUBMITS: list[tuple[dict[str, str] | None, bytes, int]] = [
    (None, b'{"task": "apitest.add", "args": [1]}', 401),
    ({"Authorization": "Bearer cvk_wrong"}, b'{"task": "apitest.add", "args": [1]}', 401),
    ({}, b'{"task": "apitest.nope"}', 404),
    ({}, b'{"task": "apitest.add", "args": ["x"]}', 422),
    ({}, b'{"task": "apitest.add", "args": [1, 2, 3]}', 422),
    ({}, b'{"task": "apitest.add", "args": [1], "extra": 1}', 422),
    ({}, b'{"task": "apitest.add", "args": [1], "queue": "nowhere"}', 422),
    (
        {},
        b'{"task": "apitest.add", "args": [1], "countdown": 1, "eta": "2030-01-01T00:00:00Z"}',
        422,
    ),
    ({}, b'{"task": "apitest.add", "args": [1', 400),
    ({}, b'{"task": "apitest.add", "args": [1], "kwargs": {"y": "' + b"9" * MAX_BODY + b'"}}', 413),
]


@pytest.mark.parametrize(("headers", "body", "status"), REFUSED_SUBMITS)
def test_refused_submit_writes_nothing(
    env: Env, headers: dict[str, str] | None, body: bytes, status: int
) -> None:
    auth = env.auth() if headers == {} else headers or {}
    response = env.client.post(
        "/api/v1/jobs", content=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    error_of(response)
    assert env.jobs() == []


class BrokenBrokerSubmitter(Submitter):
    def dispatch(self, job: Job, *args: object, **kwargs: object) -> None:
        raise OSError("connection refused by redis.internal:6379")


def test_broker_down_is_503_and_nothing_is_kept(settings: Settings, celery_app: Celery) -> None:
    store = MemoryStore()
    env = Env(settings, store, BrokenBrokerSubmitter(settings, store, celery_app))
    response = env.submit({"task": "apitest.add", "args": [1]})
    assert response.status_code == 503
    error = error_of(response)
    assert error["code"] == "broker_unavailable"
    assert "redis.internal" not in response.text
    assert env.jobs() == []


class DownStore(MemoryStore):
    def get_job(self, job_id: str) -> Job | None:
        raise StoreError("could not connect to postgres at db.internal")


class BuggyStore(MemoryStore):
    def list_jobs(self, flt: JobFilter, limit: int, cursor: str | None = None) -> JobPage:
        raise RuntimeError("secret internal detail")


def test_store_down_is_503(settings: Settings, celery_app: Celery) -> None:
    store = DownStore()
    env = Env(settings, store, Submitter(settings, store, celery_app))
    response = env.client.get(f"/api/v1/jobs/{new_job_id()}", headers=env.auth(env.read_key))
    assert response.status_code == 503
    assert error_of(response)["code"] == "store_unavailable"
    assert "db.internal" not in response.text


def test_unexpected_error_is_500_without_leaking(settings: Settings, celery_app: Celery) -> None:
    store = BuggyStore()
    app = create_api(settings, store, Submitter(settings, store, celery_app))
    plain, _ = create_key(store, "r", ["read"])
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get(
        "/api/v1/jobs", headers={"Authorization": f"Bearer {plain}", "X-Request-ID": "req-500"}
    )
    assert response.status_code == 500
    error = error_of(response)
    assert error == {"code": "internal_error", "message": "internal server error", "details": None}
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["X-Request-ID"] == "req-500"


def test_unknown_route_and_method_use_the_error_format(env: Env) -> None:
    response = env.client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    response = env.client.delete("/api/v1/tasks", headers=env.auth())
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


# -- reading jobs ----------------------------------------------------------------------


def make_jobs(store: MemoryStore, count: int, **fields: Any) -> list[Job]:
    base = utcnow() - timedelta(hours=1)
    jobs = []
    for i in range(count):
        at = base + timedelta(seconds=i)
        values: dict[str, Any] = {
            "id": new_job_id(),
            "task": "apitest.add",
            "queue": "default",
            "state": JobState.QUEUED,
            "args": (i,),
            "created_at": at,
            "updated_at": at,
            **fields,
        }
        jobs.append(store.create_job(Job(**values)))
    return jobs


def test_get_job(env: Env) -> None:
    [job] = make_jobs(env.store, 1)
    response = env.client.get(f"/api/v1/jobs/{job.id}", headers=env.auth(env.read_key))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == job.id
    assert body["state"] == "QUEUED"
    assert body["args"] == [0]


def test_get_unknown_job_is_404(env: Env) -> None:
    response = env.client.get("/api/v1/jobs/does-not-exist", headers=env.auth(env.read_key))
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "job_not_found"
    assert "does-not-exist" in error["message"]


def test_reading_needs_a_key(env: Env) -> None:
    assert env.client.get("/api/v1/jobs").status_code == 401
    assert env.client.get("/api/v1/tasks").status_code == 401
    assert env.client.get(f"/api/v1/jobs/{new_job_id()}").status_code == 401


def test_pagination_follows_cursors_newest_first(env: Env) -> None:
    created = make_jobs(env.store, 25)
    seen: list[str] = []
    pages: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 10}
        if cursor is not None:
            params["cursor"] = cursor
        response = env.client.get("/api/v1/jobs", params=params, headers=env.auth(env.read_key))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(len(body["items"]))
        seen.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [10, 10, 5]
    assert seen == [job.id for job in reversed(created)]


def test_default_limit_is_50(env: Env) -> None:
    make_jobs(env.store, 60)
    body = env.client.get("/api/v1/jobs", headers=env.auth(env.read_key)).json()
    assert len(body["items"]) == 50
    assert body["next_cursor"] is not None


def test_list_filters(env: Env) -> None:
    make_jobs(env.store, 3)
    failed = make_jobs(env.store, 2, state=JobState.FAILED, queue="email")
    response = env.client.get(
        "/api/v1/jobs", params={"state": "FAILED"}, headers=env.auth(env.read_key)
    )
    assert {item["id"] for item in response.json()["items"]} == {job.id for job in failed}
    response = env.client.get(
        "/api/v1/jobs", params={"queue": "email", "task": "apitest.add"}, headers=env.auth()
    )
    assert len(response.json()["items"]) == 2
    response = env.client.get("/api/v1/jobs", params={"task": "other"}, headers=env.auth())
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "invalid_request"),
        ({"limit": 501}, "invalid_request"),
        ({"limit": "ten"}, "invalid_request"),
        ({"state": "BOGUS"}, "invalid_request"),
        ({"cursor": "!!not-a-cursor!!"}, "invalid_cursor"),
        ({"cursor": "bm90LWEtY3Vyc29y"}, "invalid_cursor"),
        ({"cursor": "MjAyNC0wMS0wMVQwMDowMDowMHxhYmM"}, "invalid_cursor"),
    ],
)
def test_bad_list_parameters_are_422(env: Env, params: dict[str, Any], code: str) -> None:
    response = env.client.get("/api/v1/jobs", params=params, headers=env.auth(env.read_key))
    assert response.status_code == 422
    assert error_of(response)["code"] == code


def test_limit_bounds_are_accepted(env: Env) -> None:
    for limit in (1, 500):
        response = env.client.get(
            "/api/v1/jobs", params={"limit": limit}, headers=env.auth(env.read_key)
        )
        assert response.status_code == 200


# -- tasks -----------------------------------------------------------------------------


def test_tasks_lists_every_registered_task_with_its_schema(env: Env) -> None:
    response = env.client.get("/api/v1/tasks", headers=env.auth(env.read_key))
    assert response.status_code == 200
    tasks = {item["name"]: item for item in response.json()}
    add_out = tasks["apitest.add"]
    assert add_out["queue"] == "default"
    assert add_out["description"] == "Add two numbers."
    assert add_out["is_async"] is False
    assert add_out["priority"] is None
    assert set(add_out["parameters"]["properties"]) == {"x", "y"}
    assert add_out["parameters"]["required"] == ["x"]
    notify_out = tasks["apitest.notify"]
    assert notify_out["queue"] == "notifications"
    assert notify_out["priority"] == 5
    assert notify_out["is_async"] is True


# -- request ids -----------------------------------------------------------------------


def test_request_id_is_generated(env: Env) -> None:
    first = env.client.get("/healthz").headers["X-Request-ID"]
    second = env.client.get("/healthz").headers["X-Request-ID"]
    assert len(first) == 32
    assert int(first, 16) >= 0
    assert first != second


def test_client_request_id_is_echoed_when_valid(env: Env) -> None:
    response = env.client.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
    assert response.headers["X-Request-ID"] == "abc-123.x"
    response = env.client.get("/api/v1/jobs", headers={"X-Request-ID": "abc-401"})
    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "abc-401"


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "semi;colon", ""])
def test_invalid_client_request_id_is_replaced(env: Env, bad: str) -> None:
    response = env.client.get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["X-Request-ID"] != bad
    assert len(response.headers["X-Request-ID"]) == 32


def test_request_id_is_bound_to_logs(env: Env) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        env.submit({"task": "apitest.add", "args": [1]})
        env.client.post(
            "/api/v1/jobs",
            json={"task": "apitest.nope"},
            headers={**env.auth(), "X-Request-ID": "req-404"},
        )
    submitted = [e for e in logs if e["event"] == "job_submitted"]
    refused = [e for e in logs if e["event"] == "request_refused"]
    assert len(submitted) == 1
    assert len(submitted[0]["request_id"]) == 32
    assert refused[0]["request_id"] == "req-404"
    assert refused[0]["code"] == "task_not_found"
