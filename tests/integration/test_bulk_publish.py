"""Bulk publishing on Redis (conveyor.publishing): the pipelined messages, built by
conveyor.task_messages, are the very messages a one-by-one publish through Celery's
``send_task`` writes (queue, priority list, every header a worker reads, properties,
body), and a real worker runs jobs submitted in a batch and jobs released in bulk."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from conveyor.delays import release_due
from conveyor.engine import create_app, import_task_modules
from conveyor.jobs import Job, JobState, utcnow
from conveyor.store.memory import MemoryStore
from conveyor.submit import SubmitRequest, Submitter
from conveyor.task_messages import DirectMessages
from conveyor.testing import inline_settings
from tests.support.services import REDIS_URL, flush_redis
from tests.support.stack import Stack, running

pytestmark = pytest.mark.integration

MESSAGES_DB = 7
WORKER_DB = 8

#: the protocol-2 headers a Celery worker reads (celery.worker.request, .strategy,
#: app.trace): all of them, plus conveyor's own, are in every message
WORKER_HEADERS = {
    "lang",
    "task",
    "id",
    "shadow",
    "eta",
    "expires",
    "group",
    "group_index",
    "retries",
    "timelimit",
    "root_id",
    "parent_id",
    "argsrepr",
    "kwargsrepr",
    "origin",
    "ignore_result",
    "replaced_task_nesting",
    "stamped_headers",
    "stamps",
}
#: message properties the worker (kombu's Redis transport and Celery) reads
WORKER_PROPERTIES = {
    "correlation_id",
    "reply_to",
    "delivery_mode",
    "delivery_info",
    "priority",
    "body_encoding",
    "delivery_tag",
}


class DirectCount:
    """Counts the messages conveyor.task_messages built (not Celery's send_task): encoded
    for a raw LPUSH, or handed to kombu's ``Producer.publish`` (``raw=False``: the raw
    encoding is turned off, so every chunk takes kombu's batch)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, raw: bool = True) -> None:
        self.built = self.encoded = 0
        publish, encode = DirectMessages.publish, DirectMessages.encode

        def counted(direct: DirectMessages, producer: object, out: object) -> bool:
            done = publish(direct, producer, out)  # type: ignore[arg-type]
            self.built += done
            return done

        def encoded(direct: DirectMessages, out: object) -> object:
            if not raw:
                return None
            done = encode(direct, out)  # type: ignore[arg-type]
            self.built += done is not None
            self.encoded += done is not None
            return done

        monkeypatch.setattr(DirectMessages, "publish", counted)
        monkeypatch.setattr(DirectMessages, "encode", encoded)


def _drain_lists(client: redis.Redis) -> dict[bytes, list[bytes]]:
    """Every message in every Redis list (queue and priority sub-queue), removed."""
    found: dict[bytes, list[bytes]] = {}
    for key in client.scan_iter():
        if client.type(key) == b"list":
            found[key] = list(client.lrange(key, 0, -1))
            client.delete(key)
    return found


def _normalised(found: dict[bytes, list[bytes]]) -> dict[bytes, list[bytes]]:
    """The messages with kombu's per-publish delivery tag (a fresh uuid) blanked out."""
    out: dict[bytes, list[bytes]] = {}
    for key, raws in found.items():
        for raw in raws:
            tag = json.loads(raw)["properties"]["delivery_tag"]
            out.setdefault(key, []).append(raw.replace(tag.encode(), b"<delivery-tag>"))
        out[key].sort()
    return out


def _by_id(found: dict[bytes, list[bytes]]) -> dict[str, tuple[bytes, dict[str, object]]]:
    """Every message by its task id, with the list that holds it."""
    return {
        message["headers"]["id"]: (key, message)
        for key, raws in found.items()
        for message in map(json.loads, raws)
    }


@pytest.mark.parametrize("raw", [True, False], ids=["raw-lpush", "kombu-batch"])
def test_bulk_messages_are_the_one_by_one_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: bool
) -> None:
    flush_redis(MESSAGES_DB)
    url = f"{REDIS_URL}/{MESSAGES_DB}"
    settings = inline_settings(
        data_dir=tmp_path,
        broker_url=url,
        queues=["default", "email"],
        imports=["tests.support.tasks"],
    )
    import_task_modules(settings)
    app = create_app(settings)
    submitter = Submitter(settings, MemoryStore(), app)
    soon = utcnow() + timedelta(seconds=30)
    requests = [
        SubmitRequest("tests.add", args=(1,)),
        SubmitRequest("tests.add", args=(2,), kwargs={"y": 5}, priority=0),
        SubmitRequest("tests.add", args=(3,), priority=4),
        SubmitRequest("tests.add", args=(4,), priority=9, queue="email"),
        SubmitRequest("tests.echo", args=("é ☃",), eta=soon),  # a short delay: eta kept
        SubmitRequest("tests.echo", args=("x" * 2000,), kwargs={"times": 3}),  # long reprs
        SubmitRequest("tests.overtime", args=(0.5,)),  # a time limit of its own
    ]
    jobs: list[Job] = [submitter.build(req) for req in requests]
    jobs.append(submitter.build(SubmitRequest("tests.add", args=(6,))).evolve(workflow_id="wf"))
    with app.producer_or_acquire() as producer:
        assert producer.supports_batch_publish  # the pipelined path is the one under test
    client = redis.Redis.from_url(url)
    direct = DirectCount(monkeypatch, raw=raw)
    try:
        for job in jobs:
            submitter.dispatch(job)
        one_by_one = _drain_lists(client)
        assert direct.built == 0
        outcome = submitter.publish_many(jobs)
        assert [j.id for j in outcome.sent] == [j.id for j in jobs] and not outcome.unsent
        bulk = _drain_lists(client)
    finally:
        client.flushdb()
    assert direct.built == len(jobs)  # every message built by conveyor, none by send_task
    assert direct.encoded == (len(jobs) if raw else 0)  # and by the path under test
    assert sum(len(v) for v in bulk.values()) == len(jobs)
    # the same lists (queue + priority step) hold the same bytes
    assert _normalised(bulk) == _normalised(one_by_one)
    # and, spelled out, every header and property a worker reads is the same
    built, sent = _by_id(bulk), _by_id(one_by_one)
    assert set(built) == set(sent) == {job.id for job in jobs}
    for job_id, (key, message) in built.items():
        want_key, want = sent[job_id]
        assert key == want_key
        headers, want_headers = message["headers"], want["headers"]
        assert isinstance(headers, dict) and isinstance(want_headers, dict)
        assert WORKER_HEADERS <= set(headers) <= WORKER_HEADERS | {"conveyor_workflow"}
        assert headers == want_headers
        properties, want_properties = message["properties"], want["properties"]
        assert isinstance(properties, dict) and isinstance(want_properties, dict)
        assert set(properties) == set(want_properties) == WORKER_PROPERTIES
        del properties["delivery_tag"], want_properties["delivery_tag"]  # kombu's, per publish
        assert properties == want_properties
        assert {k: v for k, v in message.items() if k not in ("headers", "properties")} == {
            k: v for k, v in want.items() if k not in ("headers", "properties")
        }
    # conveyor turns priorities around on Redis (queues.broker_priority): 9 is served first
    assert {key: len(raws) for key, raws in bulk.items()} == {
        b"default:9": 6,  # no priority, priority 0, the echoes, overtime, the workflow step
        b"default:5": 1,  # priority 4
        b"email": 1,  # priority 9
    }
    echo = built[jobs[4].id][1]
    assert echo["headers"]["eta"] is not None  # type: ignore[index]
    assert built[jobs[6].id][1]["headers"]["timelimit"] == [1.0, 1.0]  # type: ignore[index]
    workflow = next(json.loads(raw) for raw in bulk[b"default:9"] if b'"wf"' in raw)
    assert workflow["headers"]["conveyor_workflow"] == "wf"


def test_a_worker_runs_batch_submits_and_bulk_releases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flush_redis(WORKER_DB)
    stack = Stack(tmp_path, {"CONVEYOR_BROKER_URL": f"{REDIS_URL}/{WORKER_DB}"})
    direct = DirectCount(monkeypatch)
    with running(stack) as client:
        reqs = [SubmitRequest("tests.add", args=(n,), priority=n % 10) for n in range(60)]
        outcomes = client.submitter.submit_many(reqs)
        batch = [job for job in outcomes if isinstance(job, Job)]
        assert len(batch) == 60
        due = utcnow() + timedelta(seconds=1)
        held = [
            client.submitter.build(SubmitRequest("tests.add", args=(n, 1000), eta=due))
            for n in range(40)
        ]
        held = [job.evolve(state=JobState.SCHEDULED) for job in held]
        client.store.create_jobs(held)
        time.sleep(max(0.0, (due - utcnow()).total_seconds()))
        assert release_due(client.store, client.submitter, limit=15) == 40
        done = [client.wait(job.id, timeout=60) for job in [*batch, *held]]
    assert direct.built == direct.encoded == 100  # conveyor's raw LPUSHes, not send_task
    assert [job.state for job in done] == [JobState.SUCCEEDED] * 100
    assert [job.result for job in done] == [*range(60), *(n + 1000 for n in range(40))]
