"""Publishing in bulk (conveyor.publishing), the delayed-job release that uses it, the
scheduler waking for the next held job, and the cheap single-submit answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from fastapi.testclient import TestClient
from kombu.exceptions import BatchPublishError
from kombu.exceptions import OperationalError as KombuOperationalError

from conveyor.api import create_api
from conveyor.delays import release_due
from conveyor.engine import create_app
from conveyor.jobs import Job, JobState, utcnow
from conveyor.keys import create_key
from conveyor.publishing import publish_many
from conveyor.scheduler import ScheduleRunner
from conveyor.settings import Settings, SettingsError, load_settings
from conveyor.store.base import StoreError
from conveyor.store.memory import MemoryStore
from conveyor.submit import SubmitRequest, Submitter
from conveyor.testing import inline_settings
from tests.support.tasks import add
from tests.unit.test_scheduler import Clock, FakeLease


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return inline_settings(
        data_dir=tmp_path / "var",
        imports=["tests.support.tasks"],
        delay_threshold=1,
    )


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def app(settings: Settings) -> Celery:
    return create_app(settings)


@pytest.fixture
def submitter(settings: Settings, store: MemoryStore, app: Celery) -> Submitter:
    return Submitter(settings, store, app)


class SendLog:
    """Records the task ids ``app.send_task`` publishes; refuses once ``fail_after`` is hit."""

    def __init__(self, app: Celery, fail_after: int | None = None) -> None:
        self.sent: list[str] = []
        self.fail_after = fail_after
        self._send = app.send_task

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise OSError("connection refused")
        result = self._send(*args, **kwargs)
        self.sent.append(kwargs["task_id"])
        return result


def hold(submitter: Submitter, count: int, due_in: float = 60) -> list[Job]:
    eta = utcnow() + timedelta(seconds=due_in)
    reqs = [SubmitRequest(task=add.name, args=(n,), eta=eta) for n in range(count)]
    jobs = [submitter.submit(req) for req in reqs]
    assert all(job.state is JobState.SCHEDULED for job in jobs)
    return jobs


# -- release ---------------------------------------------------------------------------
def test_release_goes_on_while_claims_come_back_full(
    submitter: Submitter, store: MemoryStore, app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = hold(submitter, 7)
    log = SendLog(app)
    monkeypatch.setattr(app, "send_task", log)
    later = utcnow() + timedelta(seconds=61)
    assert release_due(store, submitter, now=later, limit=3) == 7
    assert sorted(log.sent) == sorted(job.id for job in jobs)
    assert all(store.get_job(job.id).state is JobState.QUEUED for job in jobs)  # type: ignore[union-attr]
    assert release_due(store, submitter, now=later, limit=3) == 0
    assert len(log.sent) == 7


def test_release_puts_back_what_the_broker_refused_and_sends_it_later(
    submitter: Submitter, store: MemoryStore, app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = hold(submitter, 5)
    log = SendLog(app, fail_after=2)
    monkeypatch.setattr(app, "send_task", log)
    later = utcnow() + timedelta(seconds=61)
    assert release_due(store, submitter, now=later) == 2
    states = [store.get_job(job.id).state for job in jobs]  # type: ignore[union-attr]
    assert states.count(JobState.QUEUED) == 2
    assert states.count(JobState.SCHEDULED) == 3
    log.fail_after = None  # the broker is back
    assert release_due(store, submitter, now=later) == 3
    assert sorted(log.sent) == sorted(job.id for job in jobs)  # each exactly once


# -- publishing in batches ---------------------------------------------------------------
class FakeBatchingProducer:
    """A producer whose transport batches: the n-th batch's flush fails when told to."""

    supports_batch_publish = True

    def __init__(self, fail_batch: int | None) -> None:
        self.fail_batch = fail_batch
        self.batches = 0
        self.buffered: list[str] = []
        self.flushed: list[str] = []

    @contextmanager
    def batch(self, max_size: int) -> Iterator[None]:
        assert max_size > 0
        self.batches += 1
        self.buffered = []
        yield
        if self.batches == self.fail_batch:
            raise BatchPublishError("Redis publish batch failed; delivery is uncertain")
        self.flushed.extend(self.buffered)


class FakeApp:
    def __init__(self, producer: FakeBatchingProducer) -> None:
        self.producer = producer
        self.amqp = SimpleNamespace(queues={})  # no queue to declare

    @contextmanager
    def producer_or_acquire(self) -> Iterator[FakeBatchingProducer]:
        yield self.producer


def jobs_named(*ids: str) -> list[Job]:
    now = utcnow()
    return [
        Job(id=i, task="t", queue="default", state=JobState.QUEUED, created_at=now, updated_at=now)
        for i in ids
    ]


def test_a_failed_batch_reports_its_whole_chunk_unsent() -> None:
    producer = FakeBatchingProducer(fail_batch=2)
    jobs = jobs_named("a", "b", "c", "d", "e")

    def send(job: Job, on: Any) -> None:
        assert on is producer
        producer.buffered.append(job.id)

    outcome = publish_many(FakeApp(producer), jobs, send, chunk=2)  # type: ignore[arg-type]
    assert [j.id for j in outcome.sent] == ["a", "b"]
    assert [j.id for j in outcome.unsent] == ["c", "d", "e"]
    assert isinstance(outcome.error, BatchPublishError)
    assert producer.flushed == ["a", "b"]


def test_batches_of_chunk_jobs_each() -> None:
    producer = FakeBatchingProducer(fail_batch=None)
    jobs = jobs_named(*"abcdefg")
    outcome = publish_many(
        FakeApp(producer),  # type: ignore[arg-type]
        jobs,
        lambda job, on: producer.buffered.append(job.id),
        chunk=3,
    )
    assert producer.batches == 3
    assert outcome.sent == jobs and outcome.unsent == [] and outcome.error is None


def test_publish_many_of_nothing_touches_no_broker() -> None:
    outcome = publish_many(None, [], lambda job, on: None)  # type: ignore[arg-type]
    assert outcome.sent == [] and outcome.unsent == []


# -- the scheduler wakes for the next held job ---------------------------------------------
def test_the_scheduler_sleeps_only_until_the_next_held_job(
    settings: Settings, store: MemoryStore, submitter: Submitter
) -> None:
    clock = Clock(utcnow())
    job = hold(submitter, 1, due_in=30)[0]
    assert job.scheduled_for is not None
    clock.now = job.scheduled_for - timedelta(seconds=0.3)
    runner = ScheduleRunner(
        settings, store, submitter, FakeLease("h"), callbacks=[release_due], clock=clock
    )
    assert runner.tick() == pytest.approx(0.3)
    clock.now = job.scheduled_for
    assert runner.tick() == settings.scheduler_tick  # released: nothing held any more
    assert store.get_job(job.id).state is JobState.QUEUED  # type: ignore[union-attr]


def test_a_held_job_already_due_does_not_make_the_scheduler_spin(
    settings: Settings, store: MemoryStore, submitter: Submitter
) -> None:
    job = hold(submitter, 1, due_in=30)[0]
    assert job.scheduled_for is not None
    clock = Clock(job.scheduled_for + timedelta(seconds=1))
    # no release callback: the due job stays held (as when the broker refuses it)
    runner = ScheduleRunner(settings, store, submitter, FakeLease("h"), clock=clock)
    assert runner.tick() == settings.scheduler_tick


# -- single submits ------------------------------------------------------------------------
def test_dispatch_never_subscribes_to_celery_results(
    submitter: Submitter, app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """conveyor keeps results in its job store: a Redis result backend must not be asked
    to watch each published task (a SUBSCRIBE and an UNSUBSCRIBE per job)."""
    watched: list[str] = []
    monkeypatch.setattr(app.backend, "on_task_call", lambda producer, task_id: watched.append(1))
    submitter.submit(SubmitRequest(task="tests.add", args=(1,)))
    jobs = submitter.submit_many([SubmitRequest(task="tests.add", args=(n,)) for n in range(3)])
    assert all(isinstance(job, Job) for job in jobs)
    assert watched == []


def test_a_new_jobs_answer_reads_nothing_back(
    settings: Settings, store: MemoryStore, submitter: Submitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, _ = create_key(store, "w", ["write"])
    client = TestClient(create_api(settings, store, submitter))

    def no_read(*args: object) -> Any:
        raise AssertionError("the answer to a new job read the store")

    monkeypatch.setattr(store, "list_attempts", no_read)
    monkeypatch.setattr(store, "list_callback_deliveries", no_read)
    headers = {"Authorization": f"Bearer {key}"}
    response = client.post("/api/v1/jobs", json={"task": "tests.add", "args": [1]}, headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["state"] == "QUEUED" and body["attempts"] == [] and body["callbacks"] == []
    stored = store.get_job(body["id"])
    assert stored is not None and stored.state is JobState.QUEUED


def test_a_job_that_cannot_be_sent_is_put_back_and_the_others_go(
    submitter: Submitter, store: MemoryStore, app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A held job whose queue is no longer configured stays SCHEDULED (retried each pass,
    logged); it neither blocks the jobs due after it nor is left QUEUED without a message."""
    first, last = hold(submitter, 2)
    assert first.scheduled_for is not None
    gone = first.evolve(id="gone-queue-job", queue="no-longer-configured")
    store.create_job(gone.evolve(scheduled_for=first.scheduled_for - timedelta(seconds=1)))
    log = SendLog(app)
    monkeypatch.setattr(app, "send_task", log)
    later = utcnow() + timedelta(seconds=61)
    assert release_due(store, submitter, now=later) == 2
    assert sorted(log.sent) == sorted([first.id, last.id])
    assert store.get_job(gone.id).state is JobState.SCHEDULED  # type: ignore[union-attr]


def test_a_batching_producer_keeps_going_after_a_job_of_its_own_fails() -> None:
    producer = FakeBatchingProducer(fail_batch=None)

    def send(job: Job, on: Any) -> None:
        if job.id == "b":
            raise KeyError("no such queue")
        producer.buffered.append(job.id)

    outcome = publish_many(FakeApp(producer), jobs_named("a", "b", "c"), send)  # type: ignore[arg-type]
    assert [j.id for j in outcome.sent] == ["a", "c"]
    assert [j.id for j in outcome.unsent] == ["b"]
    assert isinstance(outcome.error, KeyError)
    assert producer.flushed == ["a", "c"]


def test_release_ahead_sends_jobs_early_as_eta_tasks(
    tmp_path: Path, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = inline_settings(
        data_dir=tmp_path / "var",
        imports=["tests.support.tasks"],
        delay_threshold=5,
        release_ahead=2,
    )
    app = create_app(settings)
    submitter = Submitter(settings, store, app)
    soon, later = hold(submitter, 1, due_in=31)[0], hold(submitter, 1, due_in=60)[0]
    assert soon.scheduled_for is not None and later.scheduled_for is not None
    etas: dict[str, Any] = {}
    send = app.send_task

    def record(*args: Any, **kwargs: Any) -> Any:
        etas[kwargs["task_id"]] = kwargs["eta"]
        return send(*args, **kwargs)

    monkeypatch.setattr(app, "send_task", record)
    clock = Clock(soon.scheduled_for - timedelta(seconds=3))
    runner = ScheduleRunner(
        settings, store, submitter, FakeLease("h"), callbacks=[release_due], clock=clock
    )
    assert runner.tick() == pytest.approx(1.0)  # wakes 2 s before the job is due
    clock.now = soon.scheduled_for - timedelta(seconds=2)
    runner.tick()
    assert etas == {soon.id: soon.scheduled_for}  # early, so with its eta; the other held
    assert store.get_job(later.id).state is JobState.SCHEDULED  # type: ignore[union-attr]


def test_release_ahead_must_stay_below_the_delay_threshold(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="release_ahead must be below delay_threshold"):
        load_settings(data_dir=tmp_path, delay_threshold=5, release_ahead=5)


# -- nothing reaches the broker before the caller is ready (the rows are committed) -----
def test_nothing_is_flushed_before_ready_returns() -> None:
    producer = FakeBatchingProducer(fail_batch=None)
    seen: list[tuple[list[str], list[str]]] = []

    def ready() -> None:
        seen.append((list(producer.buffered), list(producer.flushed)))

    outcome = publish_many(
        FakeApp(producer),  # type: ignore[arg-type]
        jobs_named(*"abcde"),
        lambda job, on: producer.buffered.append(job.id),
        chunk=2,
        ready=ready,
    )
    # awaited once: the first chunk built and buffered, nothing flushed yet
    assert seen == [(["a", "b"], [])]
    assert producer.flushed == list("abcde") and [j.id for j in outcome.sent] == list("abcde")


@pytest.mark.parametrize("error", [StoreError("the store is down"), OSError("looks like a broker")])
def test_when_ready_fails_nothing_is_sent_and_its_error_is_raised(error: Exception) -> None:
    producer = FakeBatchingProducer(fail_batch=None)

    def ready() -> None:
        raise error

    with pytest.raises(type(error)) as raised:
        publish_many(
            FakeApp(producer),  # type: ignore[arg-type]
            jobs_named("a", "b"),
            lambda job, on: producer.buffered.append(job.id),
            ready=ready,
        )
    assert raised.value is error
    assert producer.flushed == []


def test_without_batches_ready_comes_before_the_first_publish() -> None:
    producer = FakeBatchingProducer(fail_batch=None)
    producer.supports_batch_publish = False  # type: ignore[misc]
    order: list[str] = []
    outcome = publish_many(
        FakeApp(producer),  # type: ignore[arg-type]
        jobs_named("a", "b"),
        lambda job, on: order.append(job.id),
        ready=lambda: order.append("ready"),
    )
    assert order == ["ready", "a", "b"] and len(outcome.sent) == 2


def test_ready_is_awaited_even_when_the_broker_fails_first() -> None:
    class Unreachable(FakeApp):
        @contextmanager
        def producer_or_acquire(self) -> Iterator[FakeBatchingProducer]:
            raise KombuOperationalError("connection refused")
            yield self.producer

    called: list[bool] = []
    outcome = publish_many(
        Unreachable(FakeBatchingProducer(fail_batch=None)),  # type: ignore[arg-type]
        jobs_named("a", "b"),
        lambda job, on: None,
        ready=lambda: called.append(True),
    )
    assert called == [True]  # the rows exist before the caller deletes the unsent ones
    assert [j.id for j in outcome.unsent] == ["a", "b"]


def test_submit_many_sends_nothing_when_the_rows_cannot_be_written(
    submitter: Submitter, store: MemoryStore, app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(jobs: Any) -> None:
        raise StoreError("job store unreachable")

    monkeypatch.setattr(store, "create_jobs", refuse)
    log = SendLog(app)
    monkeypatch.setattr(app, "send_task", log)
    with pytest.raises(StoreError):
        submitter.submit_many([SubmitRequest(add.name, args=(n,)) for n in range(3)])
    assert log.sent == []


def test_submit_many_writes_the_rows_before_the_messages_go(
    submitter: Submitter, store: MemoryStore, app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows_at_send: list[bool] = []
    send = app.send_task

    def checked(*args: Any, **kwargs: Any) -> Any:
        rows_at_send.append(store.get_job(kwargs["task_id"]) is not None)
        return send(*args, **kwargs)

    monkeypatch.setattr(app, "send_task", checked)
    jobs = submitter.submit_many([SubmitRequest(add.name, args=(n,)) for n in range(5)])
    assert all(isinstance(job, Job) for job in jobs)
    assert rows_at_send == [True] * 5
