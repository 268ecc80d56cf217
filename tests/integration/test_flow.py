"""The same job flows against the embedded default, Redis, RabbitMQ and PostgreSQL.

Each backend gets real processes: `conveyor migrate`, a `conveyor worker`, and
submits from this process through the same Submitter the API uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.jobs import JobState
from tests.support.http import Receiver, http_receiver
from tests.support.services import (
    AMQP_URL,
    REDIS_URL,
    flush_redis,
    fresh_postgres_database,
    require,
)
from tests.support.stack import Client, Stack, running

pytestmark = pytest.mark.integration


@pytest.fixture(
    scope="module",
    params=["embedded", "redis+postgres", "rabbitmq+postgres", "redis+sqlite"],
)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Client]:
    kind: str = request.param
    data_dir = tmp_path_factory.mktemp(kind.replace("+", "_"))
    if kind == "embedded":
        with running(Stack(data_dir)) as c:
            yield c
        return
    if kind == "redis+sqlite":
        flush_redis(3)
        with running(Stack(data_dir, {"CONVEYOR_BROKER_URL": f"{REDIS_URL}/3"})) as c:
            yield c
        return
    with fresh_postgres_database() as db_url:
        if kind == "redis+postgres":
            flush_redis(1)
            flush_redis(2)
            overrides = {
                "CONVEYOR_BROKER_URL": f"{REDIS_URL}/1",
                "CONVEYOR_RESULT_BACKEND": f"{REDIS_URL}/2",
                "CONVEYOR_DATABASE_URL": db_url,
            }
        else:
            require("rabbitmq")
            overrides = {
                "CONVEYOR_BROKER_URL": AMQP_URL,
                "CONVEYOR_RESULT_BACKEND": "db+" + db_url,
                "CONVEYOR_DATABASE_URL": db_url,
            }
        stack = Stack(data_dir, overrides)
        with running(stack) as c:
            yield c


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


def test_webhook_post_succeeds_and_request_arrives(client: Client, receiver: Receiver) -> None:
    path = f"/hook-{uuid.uuid4().hex}"
    job = client.submit("webhook.post", url=receiver.url + path, payload={"hello": "world"})
    assert job.state is JobState.QUEUED
    done = client.wait(job.id)
    assert done.state is JobState.SUCCEEDED, done
    assert done.result["status_code"] == 200
    assert done.attempts == 1
    assert done.started_at is not None and done.finished_at is not None
    assert done.worker and done.worker.startswith("conveyor-")
    (request,) = receiver.to(path)
    assert request.json() == {"hello": "world"}
    assert request.headers["Idempotency-Key"] == job.id


def test_webhook_4xx_fails_permanently_without_retry(client: Client, receiver: Receiver) -> None:
    path = f"/gone-{uuid.uuid4().hex}"
    receiver.responses[path] = [(410, '{"error": "gone"}')]
    done = client.wait(client.submit("webhook.post", url=receiver.url + path, payload={}).id)
    # webhook.post has a retry policy: a PermanentError gives up at once → DEAD (dead-lettered)
    assert done.state is JobState.DEAD
    assert done.error_type == "PermanentError"
    assert "410" in (done.error or "")
    assert len(receiver.to(path)) == 1


def test_async_task_runs_on_the_worker_loop(client: Client) -> None:
    jobs = [client.submit("tests.async_add", x=i, y=1) for i in range(5)]
    results = [client.wait(j.id) for j in jobs]
    assert [r.result for r in results] == [1, 2, 3, 4, 5]


def test_temporary_errors_retry_until_success(client: Client, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    done = client.wait(client.submit("tests.flaky", str(counter), 3).id)
    assert done.state is JobState.SUCCEEDED
    assert done.attempts == 3
    assert done.result == 3
    assert counter.read_text() == "xxx"


def test_failure_is_recorded_with_traceback(client: Client) -> None:
    done = client.wait(client.submit("tests.fail", "boom").id)
    assert done.state is JobState.FAILED
    assert done.error == "boom"
    assert done.traceback and "PermanentError" in done.traceback


def test_a_burst_of_jobs_is_all_recorded(client: Client) -> None:
    jobs = [client.submit("tests.echo", f"v{i}") for i in range(60)]
    finished = [client.wait(j.id) for j in jobs]
    assert all(j.state is JobState.SUCCEEDED for j in finished)
    assert [j.result["value"] for j in finished] == [f"v{i}" for i in range(60)]
