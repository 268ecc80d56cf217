"""The Python client: request shapes (MockTransport), typed errors, and the real app
in-process (ASGITransport) with inline execution."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import conveyor
from conveyor.api import create_api
from conveyor.client import (
    ApiError,
    AsyncClient,
    Client,
    JobFailed,
    NotFound,
    ServiceUnavailable,
    TaskNotFound,
    Unauthorized,
    ValidationFailed,
)
from conveyor.jobs import JobState
from conveyor.keys import create_key
from conveyor.testing import InlineConveyor, inline_settings

BASE = "http://conveyor.test"
NOW = "2026-01-01T00:00:00+00:00"


def job_json(**changes: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": "j1",
        "task": "tests.add",
        "queue": "default",
        "state": "QUEUED",
        "args": [1],
        "kwargs": {},
        "priority": None,
        "attempts": 0,
        "result": None,
        "error": None,
        "error_type": None,
        "traceback": None,
        "worker": None,
        "created_at": NOW,
        "scheduled_for": None,
        "started_at": None,
        "finished_at": None,
        "updated_at": NOW,
        "progress": None,
        "workflow_id": None,
    }
    job.update(changes)
    return job


class Recorded:
    """A MockTransport that records every request and answers with ``respond``."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.respond = respond or (lambda request: httpx.Response(200, json=job_json()))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)

    def client(self) -> Client:
        return Client(BASE, "key-0123456789abcdef", transport=httpx.MockTransport(self))

    def last(self) -> tuple[str, str, Any]:
        request = self.requests[-1]
        body = json.loads(request.content) if request.content else None
        return request.method, request.url.path, body


def error(status: int, code: str, details: Any = None) -> Callable[[httpx.Request], Any]:
    body = {"error": {"code": code, "message": f"{code}!", "details": details}}
    return lambda request: httpx.Response(status, json=body, headers={"X-Request-ID": "rid-1"})


def test_submit_separates_arguments_from_options() -> None:
    rec = Recorded()
    with rec.client() as client:
        eta = datetime(2030, 1, 1, tzinfo=UTC)
        handle = client.submit("tests.add", 1, y=2, queue="email", priority=3, eta=eta)
        assert handle.id == "j1" and handle.job.state is JobState.QUEUED
        method, path, body = rec.last()
        assert (method, path) == ("POST", "/api/v1/jobs")
        assert body == {
            "task": "tests.add",
            "args": [1],
            "kwargs": {"y": 2},
            "queue": "email",
            "priority": 3,
            "eta": "2030-01-01T00:00:00+00:00",
        }
        client.submit("tests.q", kwargs={"queue": "a task argument named queue"})
        assert rec.last()[2] == {
            "task": "tests.q",
            "args": [],
            "kwargs": {"queue": "a task argument named queue"},
        }
    assert rec.requests[0].headers["Authorization"] == "Bearer key-0123456789abcdef"


def test_schedule_dead_letter_and_cancel_paths() -> None:
    rec = Recorded(lambda request: httpx.Response(200, json=job_json(state="CANCELLED")))
    with rec.client() as client:
        calls: list[tuple[Callable[[], Any], str, str, Any]] = [
            (client.list_schedules, "GET", "/api/v1/schedules", None),
            (lambda: client.get_schedule("daily"), "GET", "/api/v1/schedules/daily", None),
            (
                lambda: client.create_schedule("daily", "tests.add", cron="0 * * * *"),
                "POST",
                "/api/v1/schedules",
                {"name": "daily", "task": "tests.add", "cron": "0 * * * *"},
            ),
            (
                lambda: client.update_schedule("daily", enabled=False),
                "PATCH",
                "/api/v1/schedules/daily",
                {"enabled": False},
            ),
            (lambda: client.delete_schedule("daily"), "DELETE", "/api/v1/schedules/daily", None),
            (lambda: client.run_schedule("daily"), "POST", "/api/v1/schedules/daily/run", None),
            (lambda: client.pause_schedule("d"), "POST", "/api/v1/schedules/d/pause", None),
            (lambda: client.resume_schedule("d"), "POST", "/api/v1/schedules/d/resume", None),
            (client.list_dead_letters, "GET", "/api/v1/dead-letters", None),
            (
                lambda: client.replay_dead_letter("7"),
                "POST",
                "/api/v1/dead-letters/7/replay",
                None,
            ),
            (
                lambda: client.replay_dead_letters(task="tests.add"),
                "POST",
                "/api/v1/dead-letters/replay",
                {"task": "tests.add"},
            ),
            (lambda: client.delete_dead_letter("7"), "DELETE", "/api/v1/dead-letters/7", None),
            (
                lambda: client.cancel("j1", terminate=True),
                "POST",
                "/api/v1/jobs/j1/cancel",
                {"terminate": True},
            ),
        ]
        for call, method, path, body in calls:
            call()
            assert rec.last() == (method, path, body)
        assert client.job("j1").cancel().state is JobState.CANCELLED
        assert rec.last() == ("POST", "/api/v1/jobs/j1/cancel", {"terminate": False})
        client.list_dead_letters(task="tests.add", limit=5)
        assert dict(rec.requests[-1].url.params) == {"task": "tests.add", "limit": "5"}


def test_catalog_helpers_submit_by_name() -> None:
    rec = Recorded()
    with rec.client() as client:
        helpers: list[tuple[Callable[..., Any], str]] = [
            (client.email.send, "email.send"),
            (client.telegram.send_message, "telegram.send_message"),
            (client.sms.send, "sms.send"),
            (client.push.send, "push.send"),
            (client.webhook.post, "webhook.post"),
            (client.http.request, "http.request"),
        ]
        for helper, name in helpers:
            helper(to="x", text="hi")
            assert rec.last()[2] == {"task": name, "args": [], "kwargs": {"to": "x", "text": "hi"}}


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "invalid_key", Unauthorized),
        (403, "forbidden", Unauthorized),
        (404, "task_not_found", TaskNotFound),
        (404, "job_not_found", NotFound),
        (422, "invalid_arguments", ValidationFailed),
        (400, "malformed_json", ValidationFailed),
        (503, "broker_unavailable", ServiceUnavailable),
        (500, "internal_error", ApiError),
    ],
)
def test_errors_are_typed(status: int, code: str, expected: type[ApiError]) -> None:
    details = [{"loc": ["x"], "msg": "bad", "type": "int_parsing"}] if status == 422 else None
    if code == "task_not_found":
        details = {"task": "nope"}
    rec = Recorded(error(status, code, details))
    with rec.client() as client, pytest.raises(expected) as caught:
        client.submit("nope")
    exc = caught.value
    assert type(exc) is expected
    assert (exc.status, exc.code, exc.request_id) == (status, code, "rid-1")
    if expected is ValidationFailed and status == 422:
        assert isinstance(exc, ValidationFailed)
        assert exc.errors == details
    if expected is TaskNotFound:
        assert isinstance(exc, conveyor.TaskNotFound)  # the in-process error type too
        assert isinstance(exc, TaskNotFound) and exc.name == "nope"


def test_non_json_error_is_still_an_api_error() -> None:
    rec = Recorded(lambda request: httpx.Response(502, text="bad gateway"))
    with rec.client() as client, pytest.raises(ApiError) as caught:
        client.get_job("j1")
    assert caught.value.status == 502 and "bad gateway" in caught.value.message


def test_wait_long_polls_and_result_raises_job_failed() -> None:
    answers = iter(
        [
            job_json(state="STARTED"),
            job_json(state="FAILED", error="boom", error_type="PermanentError"),
        ]
    )
    rec = Recorded(lambda request: httpx.Response(200, json=next(answers)))
    with rec.client() as client:
        handle = client.job("j1")
        with pytest.raises(JobFailed) as caught:
            handle.result(timeout=120)
    assert caught.value.error == "boom" and caught.value.state is JobState.FAILED
    assert float(rec.requests[-1].url.params["wait"]) == 60


def test_wait_times_out() -> None:
    rec = Recorded(lambda request: httpx.Response(200, json=job_json(state="STARTED")))
    with rec.client() as client, pytest.raises(TimeoutError):
        client.job("j1").wait(timeout=0.05)


# -- the real app, in-process -------------------------------------------------------------
@pytest.fixture
def inline() -> InlineConveyor:
    return InlineConveyor(inline_settings(imports=["tests.support.tasks"]))


@pytest.fixture
def app_client(inline: InlineConveyor) -> Iterator[AsyncClient]:
    app = create_api(inline.settings, inline.store, inline.submitter)
    key, _ = create_key(inline.store, "c", ["write"])
    yield AsyncClient(BASE, key, transport=httpx.ASGITransport(app=app))


def test_async_client_against_the_app(app_client: AsyncClient) -> None:
    async def scenario() -> None:
        async with app_client as client:
            handle = await client.submit("tests.add", 2, y=3)
            assert await handle.result(timeout=5) == 5
            assert await handle.status() is JobState.SUCCEEDED
            failed = await client.submit("tests.fail", "nope")
            with pytest.raises(JobFailed) as caught:
                await failed.result(timeout=5)
            assert caught.value.error == "nope"
            with pytest.raises(ValidationFailed) as invalid:
                await client.submit("tests.add", "x")
            assert invalid.value.errors[0]["loc"] == ["x"]
            with pytest.raises(conveyor.TaskNotFound):
                await client.submit("tests.nope")
            batch = await client.submit_many(
                [
                    {"task": "tests.add", "args": [1]},
                    {"task": "tests.nope"},
                    {"task": "tests.add", "args": ["x"]},
                    {"tusk": "bad shape"},
                ]
            )
            assert len(batch.accepted) == 1
            assert [r.code for r in batch.refused] == [
                "task_not_found",
                "invalid_arguments",
                "invalid_request",
            ]
            assert await batch.accepted[0].result() == 1
            again = await client.retry(handle.id)
            assert again.id != handle.id and await again.result() == 5
            workflow = await client.start_workflow(
                {
                    "chain": [
                        {"task": "tests.add", "args": [1]},
                        {"task": "tests.add", "args": [1], "pass_result": True},
                    ]
                }
            )
            assert workflow["state"] == "SUCCEEDED"
            assert (await client.get_workflow(workflow["id"]))["tree"]["steps"][1]["result"] == 2

    asyncio.run(scenario())


def test_bad_key_is_unauthorized(inline: InlineConveyor) -> None:
    app = create_api(inline.settings, inline.store, inline.submitter)
    client = AsyncClient(BASE, "wrong-key-0123456789", transport=httpx.ASGITransport(app=app))

    async def scenario() -> None:
        async with client:
            with pytest.raises(Unauthorized):
                await client.submit("tests.add", 1)

    asyncio.run(scenario())
