"""The raw LPUSH path of bulk publishing (conveyor.publishing with
conveyor.task_messages.DirectMessages.encode) when Redis fails under it: the chunk is
reported unsent as a whole, as kombu reports a failed batch, and the submitter deletes the
rows it wrote. Each test breaks a redis-server of its own (tests.support.private_redis)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import redis
from kombu.exceptions import BatchPublishError

from conveyor.engine import create_app, import_task_modules
from conveyor.errors import BrokerUnavailable
from conveyor.jobs import Job
from conveyor.publishing import broker_refused, publish_many
from conveyor.store import JobFilter
from conveyor.store.memory import MemoryStore
from conveyor.submit import SubmitRequest, Submitter
from conveyor.task_messages import DirectMessages
from conveyor.testing import inline_settings
from tests.support.private_redis import private_redis, private_redis_server

pytestmark = pytest.mark.integration


def _submitter(tmp_path: Path, url: str, store: MemoryStore | None = None) -> Submitter:
    settings = inline_settings(
        data_dir=tmp_path / "var", broker_url=url, imports=["tests.support.tasks"]
    )
    import_task_modules(settings)
    return Submitter(settings, store or MemoryStore(), create_app(settings))


def _jobs(submitter: Submitter, count: int) -> list[Job]:
    return [submitter.build(SubmitRequest("tests.add", args=(n,))) for n in range(count)]


def _messages(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        lists = [key for key in client.scan_iter() if client.type(key) == b"list"]
        return sum(int(client.llen(key)) for key in lists)
    finally:
        client.close()


def test_the_raw_path_is_the_one_taken_on_redis(tmp_path: Path) -> None:
    with private_redis(tmp_path) as url:
        submitter = _submitter(tmp_path, url)
        app = submitter.app
        with app.producer_or_acquire() as producer:
            direct = DirectMessages.for_batch(app, producer)
            assert direct is not None and direct.raw_channel is not None
            key, payload = direct.encode(submitter.outgoing(_jobs(submitter, 1)[0])) or ("", "")
        assert key == "default:9" and '"task": "tests.add"' in payload  # priority turned around
        outcome = submitter.publish_many(_jobs(submitter, 1200))  # three chunks of <= 500
        assert len(outcome.sent) == 1200 and not outcome.unsent and outcome.error is None
        assert _messages(url) == 1200


def test_a_broker_gone_before_the_push_leaves_every_job_unsent(tmp_path: Path) -> None:
    with private_redis(tmp_path) as url:
        submitter = _submitter(tmp_path, url)
        jobs = _jobs(submitter, 20)

        def shut_down() -> None:  # the rows are written; the broker goes away
            redis.Redis.from_url(url).shutdown(nosave=True)

        outcome = publish_many(
            submitter.app, jobs, submitter._send, describe=submitter.outgoing, ready=shut_down
        )
    assert outcome.sent == [] and outcome.unsent == jobs
    assert isinstance(outcome.error, BatchPublishError) and broker_refused(outcome)


def test_a_redis_out_of_memory_takes_none_of_the_chunk(tmp_path: Path) -> None:
    with private_redis(tmp_path) as url:
        submitter = _submitter(tmp_path, url)
        jobs = _jobs(submitter, 50)
        admin = redis.Redis.from_url(url)

        def fill_up() -> None:  # every write refused from now on (OOM)
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", 1)

        outcome = publish_many(
            submitter.app, jobs, submitter._send, describe=submitter.outgoing, ready=fill_up
        )
        admin.config_set("maxmemory", 0)
        assert _messages(url) == 0  # one LPUSH of many values: refused as a whole
        admin.close()
    assert outcome.unsent == jobs and broker_refused(outcome)
    assert isinstance(outcome.error, BatchPublishError)
    assert isinstance(outcome.error.__cause__, redis.exceptions.OutOfMemoryError)


class _BrokerDiesAfterWriting(MemoryStore):
    """Writes the rows, then shuts the broker down (before the messages are pushed)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.jobs_written: list[Job] = []

    def create_jobs(self, jobs: Sequence[Job]) -> None:
        super().create_jobs(jobs)
        self.jobs_written.extend(jobs)
        redis.Redis.from_url(self.url).shutdown(nosave=True)


def test_a_batch_submit_whose_push_fails_deletes_its_rows(tmp_path: Path) -> None:
    with private_redis(tmp_path) as url:
        store = _BrokerDiesAfterWriting(url)
        submitter = _submitter(tmp_path, url, store)
        submitter.submit(SubmitRequest("tests.add", args=(0,)))  # the producer connected
        requests = [SubmitRequest("tests.add", args=(n,)) for n in range(30)]
        outcomes = submitter.submit_many(requests)
    assert all(isinstance(o, BrokerUnavailable) for o in outcomes), outcomes[:3]
    assert len(store.jobs_written) == 30
    # nothing left behind that no message will run
    assert [store.get_job(job.id) for job in store.jobs_written] == [None] * 30


def test_a_single_submit_takes_the_raw_path_and_survives_a_broker_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent_by_celery: list[str] = []
    dispatch = Submitter.dispatch

    def counted(self: Submitter, job: Job, *args: object, **kwargs: object) -> None:
        sent_by_celery.append(job.id)
        dispatch(self, job, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Submitter, "dispatch", counted)
    with private_redis(tmp_path) as url:
        submitter = _submitter(tmp_path, url)
        first = submitter.submit(SubmitRequest("tests.add", args=(1,)))
        # every client connection dropped, as by a Redis restart: the pooled one is stale
        admin = redis.Redis.from_url(url)
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
        second = submitter.submit(SubmitRequest("tests.add", args=(2,)))
        assert _messages(url) == 2
        admin.close()
    assert sent_by_celery == []  # both built and pushed by conveyor, not send_task
    assert submitter.store.get_job(first.id) is not None
    assert submitter.store.get_job(second.id) is not None


def test_a_single_submit_to_a_broker_gone_is_refused_and_not_kept(tmp_path: Path) -> None:
    with private_redis(tmp_path) as url:
        submitter = _submitter(tmp_path, url)
        submitter.submit(SubmitRequest("tests.add", args=(1,)))  # connected once
        redis.Redis.from_url(url).shutdown(nosave=True)
        with pytest.raises(BrokerUnavailable, match="broker unavailable, nothing was enqueued"):
            submitter.submit(SubmitRequest("tests.add", args=(2,)))
    jobs = submitter.store.list_jobs(JobFilter(task="tests.add"), limit=10).items
    assert [job.args for job in jobs] == [(1,)]  # the refused job's row is gone


def test_a_single_submit_waits_for_a_redis_restarting(tmp_path: Path) -> None:
    with private_redis_server(tmp_path) as server:
        submitter = _submitter(tmp_path, server.url)
        submitter.submit(SubmitRequest("tests.add", args=(1,)))  # connected once
        redis.Redis.from_url(server.url).shutdown(nosave=True)
        # back on the same port within the first wait (0.2 s) of the refused push
        restart = threading.Timer(0.05, server.start)
        restart.start()
        try:
            job = submitter.submit(SubmitRequest("tests.add", args=(2,)))
        finally:
            restart.join()
        assert _messages(server.url) == 1  # the first message went with the old server
    assert submitter.store.get_job(job.id) is not None
