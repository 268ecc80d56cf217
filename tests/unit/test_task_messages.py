"""conveyor.task_messages: the messages conveyor builds for a bulk publish are the ones
Celery's ``send_task`` builds (what each hands to kombu's ``Producer.publish``), and
whatever the builder does not cover goes through ``send_task``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, signals
from celery.local import Proxy

from conveyor.engine import create_app
from conveyor.jobs import Job, new_job_id, random_uuid, utcnow
from conveyor.publishing import publish_many
from conveyor.settings import Settings
from conveyor.store.memory import MemoryStore
from conveyor.submit import SubmitRequest, Submitter
from conveyor.task_messages import DirectMessages
from conveyor.testing import inline_settings

#: only the publish retry differs: send_task asks kombu to retry a publish on its own,
#: the bulk publish finds a failure when its batch is flushed (conveyor.publishing)
RETRY_ARGUMENTS = ("retry", "retry_policy")


class Connection:
    @contextmanager
    def _reraise_as_library_errors(self) -> Iterator[None]:
        yield


class RecordingProducer:
    """A producer that records what it is asked to publish (on Redis: batched)."""

    def __init__(self, batching: bool = True) -> None:
        self.supports_batch_publish = batching
        self.connection = Connection()
        self.published: list[tuple[Any, dict[str, Any]]] = []

    def publish(self, body: Any, **kwargs: Any) -> None:
        self.published.append((body, kwargs))

    def maybe_declare(self, *args: Any, **kwargs: Any) -> None:
        pass

    @contextmanager
    def batch(self, max_size: int) -> Iterator[None]:
        yield


def publishing_on(
    app: Celery, producer: RecordingProducer, monkeypatch: pytest.MonkeyPatch
) -> Celery:
    """``app`` with ``producer`` as the one its bulk publish acquires."""

    @contextmanager
    def acquire() -> Iterator[RecordingProducer]:
        yield producer

    monkeypatch.setattr(app, "producer_or_acquire", acquire)
    return app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # a Redis URL (never connected to): priorities are turned around as on Redis
    return inline_settings(
        data_dir=tmp_path / "var",
        broker_url="redis://127.0.0.1:1/0",
        queues=["default", "email"],
        imports=["tests.support.tasks"],
    )


@pytest.fixture
def app(settings: Settings) -> Celery:
    import tests.support.tasks  # noqa: F401, PLC0415 (registers the specs)

    return create_app(settings)


@pytest.fixture
def submitter(settings: Settings, app: Celery) -> Submitter:
    return Submitter(settings, MemoryStore(), app)


def varied_jobs(submitter: Submitter) -> list[Job]:
    soon = utcnow() + timedelta(seconds=30)
    requests = [
        SubmitRequest("tests.add", args=(1,)),
        SubmitRequest("tests.add", args=(2,), kwargs={"y": 5}, priority=0),
        SubmitRequest("tests.add", args=(3,), priority=9, queue="email"),
        SubmitRequest("tests.echo", args=("é ☃ " * 400,), kwargs={"times": 2}, eta=soon),
        SubmitRequest("tests.overtime", args=(0.5,)),  # its own time limit
    ]
    jobs = [submitter.build(req) for req in requests]
    jobs.append(submitter.build(SubmitRequest("tests.add", args=(6,))).evolve(workflow_id="wf"))
    return jobs


def through_send_task(submitter: Submitter, jobs: list[Job]) -> list[tuple[Any, dict[str, Any]]]:
    producer = RecordingProducer()
    for job in jobs:
        submitter.dispatch(job, producer=producer, declared=True)
    return [
        (body, {k: v for k, v in kwargs.items() if k not in RETRY_ARGUMENTS})
        for body, kwargs in producer.published
    ]


def through_builder(app: Celery, submitter: Submitter, jobs: list[Job]) -> list[Any]:
    producer = RecordingProducer()
    direct = DirectMessages.for_batch(app, producer)
    assert direct is not None
    assert all(direct.publish(producer, submitter.outgoing(job)) for job in jobs)
    return [
        (body, {k: v for k, v in kwargs.items() if k not in RETRY_ARGUMENTS})
        for body, kwargs in producer.published
    ]


def test_the_built_messages_are_send_tasks_messages(app: Celery, submitter: Submitter) -> None:
    jobs = varied_jobs(submitter)
    expected = through_send_task(submitter, jobs)
    built = through_builder(app, submitter, jobs)
    assert len(built) == len(jobs)
    for (body, kwargs), (want_body, want_kwargs) in zip(built, expected, strict=True):
        assert body == want_body
        # the same publish arguments, in the same order (kombu serialises them in order)
        assert list(kwargs) == list(want_kwargs)
        assert list(kwargs["headers"].items()) == list(want_kwargs["headers"].items())
        assert kwargs == want_kwargs
    echo = built[3][1]["headers"]
    assert echo["eta"] is not None and echo["timelimit"] == [300.0, 240.0]
    assert built[4][1]["headers"]["timelimit"] == [1.0, 1.0]
    assert built[5][1]["headers"]["conveyor_workflow"] == "wf"
    assert built[2][1]["routing_key"] == "email" and built[2][1]["priority"] == 0


def test_a_bulk_publish_builds_its_messages_without_send_task(
    app: Celery, submitter: Submitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(Submitter, "dispatch", lambda self, job, **kw: calls.append(job.id))
    producer = RecordingProducer()
    jobs = varied_jobs(submitter)
    outcome = publish_many(
        publishing_on(app, producer, monkeypatch),
        jobs,
        submitter._send,
        describe=submitter.outgoing,
    )
    assert outcome.sent == jobs and calls == []
    assert [kwargs["correlation_id"] for _, kwargs in producer.published] == [j.id for j in jobs]


def test_what_the_builder_does_not_cover_goes_through_send_task(
    app: Celery, submitter: Submitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.task(name="tests.expiring", expires=60, shared=False)(_nothing)
    expiring = submitter.build(SubmitRequest("tests.add", args=(0,))).evolve(task="tests.expiring")
    plain = submitter.build(SubmitRequest("tests.add", args=(1,)))
    sent: list[str] = []
    monkeypatch.setattr(Submitter, "dispatch", lambda self, job, **kw: sent.append(job.id))
    producer = RecordingProducer()
    outcome = publish_many(
        publishing_on(app, producer, monkeypatch),
        [expiring, plain],
        submitter._send,
        describe=submitter.outgoing,
    )
    assert outcome.sent == [expiring, plain]
    assert sent == [expiring.id]  # send_task: the task's own expiry
    assert [kwargs["correlation_id"] for _, kwargs in producer.published] == [plain.id]
    direct = DirectMessages.for_batch(app, producer)
    assert direct is not None
    assert not direct.publish(producer, submitter.outgoing(expiring))
    unknown = submitter.outgoing(plain)
    assert not direct.publish(producer, type(unknown)(**{**_fields(unknown), "queue": "nope"}))


def _nothing() -> None:
    pass


def _fields(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__slots__}


def test_no_builder_where_send_task_does_more(app: Celery) -> None:
    assert DirectMessages.for_batch(app, RecordingProducer()) is not None
    # RabbitMQ, the filesystem broker: kombu publishes one by one, send_task builds
    assert DirectMessages.for_batch(app, RecordingProducer(batching=False)) is None

    def receiver(**kwargs: Any) -> None:
        pass

    signals.before_task_publish.connect(receiver, weak=False)
    try:
        assert DirectMessages.for_batch(app, RecordingProducer()) is None
    finally:
        signals.before_task_publish.disconnect(receiver)
    app.conf.task_send_sent_event = True
    try:
        assert DirectMessages.for_batch(app, RecordingProducer()) is None
    finally:
        app.conf.task_send_sent_event = False


def test_no_builder_when_send_task_is_wrapped(app: Celery, monkeypatch: pytest.MonkeyPatch) -> None:
    original = type(app).send_task

    def traced(self: Celery, *args: Any, **kwargs: Any) -> Any:  # as Sentry's integration
        return original(self, *args, **kwargs)

    traced.__wrapped__ = original  # type: ignore[attr-defined]
    monkeypatch.setattr(type(app), "send_task", traced)
    assert DirectMessages.for_batch(app, RecordingProducer()) is None


def test_random_uuid_is_a_canonical_random_uuid() -> None:
    ids = {random_uuid() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lower-case hex, dashes where str(uuid4()) puts them
    assert uuid.UUID(new_job_id()).version == 4


def test_a_forked_child_hands_out_ids_of_its_own() -> None:
    random_uuid()  # the parent's pool holds 255 ready ids now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, " ".join(random_uuid() for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {random_uuid() for _ in range(5)}
    assert len(child) == 5 and not child & parent


def test_a_builder_for_celerys_app_proxy(app: Celery) -> None:
    # inside a worker, code often holds ``current_app``: a proxy whose type is not Celery's
    proxy = Proxy(lambda: app)
    assert DirectMessages.for_batch(proxy, RecordingProducer()) is not None  # type: ignore[arg-type]
