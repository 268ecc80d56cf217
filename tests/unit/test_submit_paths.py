"""Batch submit, long-poll, progress reports, in-process ``TaskFunction.submit`` and
``conveyor job --follow``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic_core import to_json

from conveyor.api import create_api
from conveyor.api.batch import BatchItem, accepted_item
from conveyor.api.schemas import JobOut
from conveyor.cli import cli
from conveyor.engine import create_app
from conveyor.jobs import Job, JobEvent, JobState, new_job_id
from conveyor.keys import create_key
from conveyor.local import get_submitter, install_submitter, use_submitter
from conveyor.settings import Settings
from conveyor.store.base import Failure, JobFilter
from conveyor.store.memory import MemoryStore
from conveyor.store.sql import SqlStore
from conveyor.submit import SubmitRequest, Submitter
from conveyor.testing import InlineConveyor, inline_settings
from tests.support.tasks import add, report_progress


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return inline_settings(
        data_dir=tmp_path / "var",
        imports=["tests.support.tasks"],
    )


class Api:
    def __init__(self, settings: Settings) -> None:
        self.store = MemoryStore()
        self.app: Celery = create_app(settings)
        self.submitter = Submitter(settings, self.store, self.app)
        self.client = TestClient(create_api(settings, self.store, self.submitter))
        key, _ = create_key(self.store, "w", ["write"])
        self.headers = {"Authorization": f"Bearer {key}"}

    def post(self, path: str, body: Any) -> Any:
        return self.client.post(path, json=body, headers=self.headers)

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.headers)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    env = Api(settings)
    with env.client:
        yield env


# -- batch ------------------------------------------------------------------------------
def test_batch_accepts_and_refuses_item_by_item(api: Api) -> None:
    jobs = [
        {"task": "tests.add", "args": [1]},
        {"task": "tests.nope"},
        {"task": "tests.add", "args": ["x"]},
        {"task": "tests.add", "args": [2], "queue": "no-such-queue"},
        {"bogus": True},
        {"task": "tests.echo", "kwargs": {"value": "v"}, "priority": 7},
    ]
    response = api.post("/api/v1/jobs/batch", {"jobs": jobs})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["refused"]) == (2, 4)
    items = body["items"]
    assert [item["index"] for item in items] == list(range(6))
    assert [item["accepted"] for item in items] == [True, False, False, False, False, True]
    codes = [item["error"]["code"] for item in items if not item["accepted"]]
    assert codes == ["task_not_found", "invalid_arguments", "submit_refused", "invalid_request"]
    assert items[2]["error"]["details"][0]["loc"] == ["x"]
    assert set(items[1]["error"]) == {"code", "message", "details"}
    stored = {job.id for job in api.store.list_jobs(JobFilter(), 100).items}
    assert stored == {items[0]["job"]["id"], items[5]["job"]["id"]}
    assert items[5]["job"]["priority"] == 7


def test_batch_answers_accepted_jobs_as_the_job_endpoint_does(api: Api) -> None:
    """The batch builds its answers as plain data: they serialise exactly as a validated
    ``JobOut.from_job`` in a ``BatchItem``, every field set or not."""
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    full = Job(
        id=new_job_id(),
        task="tests.echo",
        queue="email",
        state=JobState.SCHEDULED,
        args=("é ☃", 1.5, None, [1, {"a": 2}]),
        kwargs={"times": 2, "nested": {"x": [1]}},
        priority=3,
        attempts=2,
        result={"r": 1},
        error="e",
        error_type="ValueError",
        traceback="tb",
        worker="w@h",
        created_at=at,
        scheduled_for=at,
        started_at=at,
        finished_at=at,
        updated_at=at,
        callback_url="https://example.com/h",
        retry={"max_retries": 2},
        idempotency_key="k",
        unique_key="u",
        replay_of="d",
        progress={"done": 1, "total": 2},
        workflow_id="wf",
        rate_limit="5/s",
        reason="retry",
    )
    bare = Job(id="j", task="tests.add", queue="default", state=JobState.QUEUED, args=(1,),
               kwargs={}, created_at=at, updated_at=at)  # fmt: skip
    for index, job in enumerate([full, bare]):
        built = to_json(accepted_item(index, job))
        validated = BatchItem(index=index, accepted=True, job=JobOut.from_job(job))
        assert built == validated.model_dump_json().encode()


def test_batch_over_1000_is_refused_with_a_clear_message(api: Api) -> None:
    jobs = [{"task": "tests.add", "args": [1]}] * 1001
    response = api.post("/api/v1/jobs/batch", {"jobs": jobs})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "1000" in error["details"][0]["msg"]
    assert api.store.list_jobs(JobFilter(), 10).items == []


def test_batch_publishes_over_one_producer(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    acquired: list[Any] = []
    producers: list[Any] = []
    original_acquire = api.app.producer_or_acquire
    original_send = api.app.send_task

    def acquire(producer: Any = None) -> Any:
        if producer is None:  # a new producer (and connection) is taken from the pool
            acquired.append(1)
        return original_acquire(producer)

    def send(*args: Any, **kwargs: Any) -> Any:
        producers.append(kwargs.get("producer"))
        return original_send(*args, **kwargs)

    monkeypatch.setattr(api.app, "producer_or_acquire", acquire)
    monkeypatch.setattr(api.app, "send_task", send)
    response = api.post(
        "/api/v1/jobs/batch", {"jobs": [{"task": "tests.add", "args": [n]} for n in range(50)]}
    )
    assert response.json()["accepted"] == 50
    assert len(acquired) == 1
    assert len(producers) == 50 and producers[0] is not None
    assert all(p is producers[0] for p in producers)


def test_submit_many_deletes_what_the_broker_did_not_take(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []

    def send(*args: Any, **kwargs: Any) -> None:
        if len(sent) == 2:
            raise OSError("connection refused")
        sent.append(kwargs["task_id"])

    monkeypatch.setattr(api.app, "send_task", send)
    requests = [SubmitRequest(task="tests.add", args=(n,)) for n in range(4)]
    outcomes = api.submitter.submit_many(requests)
    assert [type(o).__name__ for o in outcomes] == ["Job", "Job"] + ["BrokerUnavailable"] * 2
    stored = {job.id for job in api.store.list_jobs(JobFilter(), 10).items}
    assert stored == set(sent)


# -- long-poll -----------------------------------------------------------------------------
def test_long_poll_returns_when_the_job_finishes(api: Api) -> None:
    job_id = api.post("/api/v1/jobs", {"task": "tests.add", "args": [1]}).json()["id"]

    def finish() -> None:
        time.sleep(0.3)
        api.store.mark_started(job_id, 1, "w")
        api.store.mark_succeeded(job_id, 1, 2)

    thread = threading.Thread(target=finish)
    thread.start()
    body = api.get(f"/api/v1/jobs/{job_id}?wait=30").json()
    thread.join()
    assert body["state"] == "SUCCEEDED" and body["result"] == 2


def test_long_poll_returns_the_job_as_is_when_the_wait_ends(api: Api) -> None:
    job_id = api.post("/api/v1/jobs", {"task": "tests.add", "args": [1]}).json()["id"]
    assert api.get(f"/api/v1/jobs/{job_id}?wait=0.3").json()["state"] == "QUEUED"
    too_long = api.get(f"/api/v1/jobs/{job_id}?wait=61")
    assert too_long.status_code == 422
    assert api.get("/api/v1/jobs/nope?wait=1").status_code == 404


# -- progress ------------------------------------------------------------------------------
def test_progress_is_recorded_on_the_job() -> None:
    inline = InlineConveyor(inline_settings(imports=["tests.support.tasks"]))
    job = inline.submit("tests.progress", 3)
    assert job.state is JobState.SUCCEEDED
    assert job.progress is not None
    assert (job.progress["done"], job.progress["total"]) == (3, 3)
    assert job.progress["message"] == "step 3"
    assert job.to_dict()["progress"]["done"] == 3


def test_progress_outside_a_task_does_nothing() -> None:
    assert report_progress(2) == 2  # called directly: no job, no recorder, no error


# -- in-process submits --------------------------------------------------------------------
def test_task_function_submit_goes_through_the_installed_submitter() -> None:
    inline = InlineConveyor(inline_settings(imports=["tests.support.tasks"]))
    with use_submitter(inline.submitter):
        job = add.submit(1, y=2)
        assert job.state is JobState.SUCCEEDED and job.result == 3
        later = add.submit_with([1], {"y": 5}, queue="email", priority=4)
        assert later.queue == "email" and later.priority == 4 and later.result == 6
        with pytest.raises(Exception, match="invalid arguments"):
            add.submit("x")  # type: ignore[arg-type]
    assert inline.store.get_job(job.id) is not None


def test_default_submitter_is_built_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CONVEYOR_BROKER_URL", "memory://")
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", "memory://")
    previous = install_submitter(None)
    try:
        submitter = get_submitter()
        assert get_submitter() is submitter
        assert submitter.settings.data_dir == tmp_path
        job = add.submit(2)
        assert job.state is JobState.QUEUED
        assert submitter.store.get_job(job.id) is not None
    finally:
        install_submitter(previous)


# -- conveyor job --follow -----------------------------------------------------------------
@contextmanager
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path}/conveyor.db")
    store.migrate()
    try:
        yield store
    finally:
        store.close()


def test_follow_draws_progress_until_final(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_DATA_DIR", str(tmp_path))
    with sqlite_store(tmp_path) as store:
        job = Job(id=new_job_id(), task="tests.progress", queue="default", state=JobState.QUEUED)
        store.create_job(job)
        store.mark_started(job.id, 1, "w")

        def work() -> None:
            for done in range(1, 5):
                time.sleep(0.1)
                store.apply_events([JobEvent.progress_report(job.id, done, 4, f"row {done}")])
            store.mark_failed(job.id, 1, Failure("nope", "PermanentError"))

        thread = threading.Thread(target=work)
        thread.start()
        result = CliRunner().invoke(cli, ["job", job.id, "--follow", "--timeout", "30"])
        thread.join()
    assert result.exit_code == 0, result.output
    assert '"state": "FAILED"' in result.output
    assert '"done": 4' in result.output
