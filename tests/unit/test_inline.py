"""The whole job flow in-process: validation, hooks, retry policy and recording."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from conveyor.errors import ArgumentsInvalid, SubmitRefused, TaskNotFound, TemporaryError
from conveyor.jobs import JobState
from conveyor.policies.retry import RetryPolicy
from conveyor.store.base import JobFilter
from conveyor.submit import SubmitRequest
from conveyor.task import task
from conveyor.testing import InlineConveyor, inline_settings
from tests.support.http import Receiver, http_receiver

CALLS: list[int] = []


@task(name="inline.flaky", retry=RetryPolicy(max_retries=2, base_delay=0, jitter=False))
def flaky(fail_times: int) -> int:
    CALLS.append(fail_times)
    if len(CALLS) <= fail_times:
        raise TemporaryError(f"failure {len(CALLS)}")
    return len(CALLS)


@task(name="inline.no_policy")
def no_policy() -> None:
    raise RuntimeError("kaput")


@task(name="inline.async")
async def async_task(x: int) -> dict[str, int]:
    return {"x": x}


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


def test_webhook_success_records_result_and_sends_idempotency_key(
    conveyor_inline: InlineConveyor, receiver: Receiver
) -> None:
    job = conveyor_inline.submit("webhook.post", url=receiver.url + "/a", payload={"k": "v"})
    assert job.state is JobState.SUCCEEDED
    assert job.result == {"status_code": 200, "body": '{"ok": true}'}
    (request,) = receiver.to("/a")
    assert request.headers["Idempotency-Key"] == job.id
    assert request.json() == {"k": "v"}


def test_webhook_5xx_is_retried_then_succeeds(
    conveyor_inline: InlineConveyor, receiver: Receiver
) -> None:
    receiver.responses["/b"] = [(503, "busy"), (502, "busy"), (200, "fine")]
    job = conveyor_inline.submit("webhook.post", url=receiver.url + "/b", payload={})
    assert job.state is JobState.SUCCEEDED
    assert job.attempts == 3
    assert len(receiver.to("/b")) == 3


def test_webhook_connection_refused_is_temporary(conveyor_inline: InlineConveyor) -> None:
    spec_policy = conveyor_inline.app.tasks["webhook.post"].conveyor_spec.retry
    assert spec_policy is not None and spec_policy.max_retries == 5
    with capture_logs() as logs:
        job = conveyor_inline.submit(
            "webhook.post", url="http://127.0.0.1:9/", payload={}, timeout=0.5
        )
    assert job.state is JobState.DEAD  # retries exhausted: a dead letter keeps it
    assert job.error_type == "TemporaryError"
    events = [e["event"] for e in logs]
    assert events.count("job_retried") == 5
    assert "job_dead" in events


def test_retry_policy_counts_attempts(conveyor_inline: InlineConveyor) -> None:
    job = conveyor_inline.submit("inline.flaky", 2)
    assert job.state is JobState.SUCCEEDED
    assert job.attempts == 3
    assert job.result == 3


def test_exhausted_retries_die_with_the_last_error(conveyor_inline: InlineConveyor) -> None:
    job = conveyor_inline.submit("inline.flaky", 5)
    assert job.state is JobState.DEAD
    assert job.attempts == 3
    assert job.error == "failure 3"
    assert job.traceback and "TemporaryError" in job.traceback


def test_no_policy_fails_at_once_with_structured_logs(conveyor_inline: InlineConveyor) -> None:
    with capture_logs() as logs:
        job = conveyor_inline.submit("inline.no_policy")
    assert job.state is JobState.FAILED
    assert job.error_type == "RuntimeError"
    events = [(e["event"], e.get("job_id")) for e in logs if e["event"].startswith("job_")]
    assert events == [
        ("job_submitted", job.id),
        ("job_started", job.id),
        ("job_failed", job.id),
    ]
    started = next(e for e in logs if e["event"] == "job_started")
    assert started["task"] == "inline.no_policy"
    assert started["queue"] == "default"
    assert started["attempt"] == 1


def test_async_task_result(conveyor_inline: InlineConveyor) -> None:
    job = conveyor_inline.submit("inline.async", x=3)
    assert job.state is JobState.SUCCEEDED
    assert job.result == {"x": 3}


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (SubmitRequest(task="nope"), TaskNotFound),
        (SubmitRequest(task="inline.async", kwargs={"x": "a"}), ArgumentsInvalid),
        (SubmitRequest(task="inline.async", kwargs={"x": 1}, queue="nope"), SubmitRefused),
        (SubmitRequest(task="inline.async", kwargs={"x": 1}, priority=10), SubmitRefused),
        (SubmitRequest(task="inline.async", kwargs={"x": 1}, countdown=-1), SubmitRefused),
        (
            SubmitRequest(task="inline.async", kwargs={"x": 1}, countdown=5, eta=datetime.now(UTC)),
            SubmitRefused,
        ),
    ],
)
def test_refused_submits_write_nothing(
    conveyor_inline: InlineConveyor, request_: SubmitRequest, error: type[Exception]
) -> None:
    with pytest.raises(error):
        conveyor_inline.submitter.submit(request_)
    assert conveyor_inline.store.list_jobs(JobFilter(), 10).items == []


def test_eta_in_the_past_runs_now_and_future_eta_is_kept() -> None:
    conveyor = InlineConveyor()
    past = conveyor.submitter.build(
        SubmitRequest(task="inline.async", kwargs={"x": 1}, eta=datetime.now(UTC) - timedelta(1))
    )
    assert past.scheduled_for is None
    future = conveyor.submitter.build(
        SubmitRequest(task="inline.async", kwargs={"x": 1}, countdown=60)
    )
    assert future.scheduled_for is not None
    assert future.scheduled_for > datetime.now(UTC) + timedelta(seconds=50)


def test_routes_from_settings_pick_the_queue() -> None:
    conveyor = InlineConveyor(inline_settings(routes={"inline.*": "analytics"}))
    job = conveyor.submit("inline.async", x=1)
    assert job.queue == "analytics"
    explicit = conveyor.submit("webhook.post", url="http://127.0.0.1:9/", payload={}, timeout=0.1)
    assert explicit.queue == "notifications"  # the task's own queue wins over routes
