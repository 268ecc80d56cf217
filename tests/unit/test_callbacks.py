"""Completion callbacks: refused without a secret, signed, retried, recorded on the job."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api import create_api
from conveyor.callbacks import SIGNATURE_HEADER, callback_body, deliver, sign, verify
from conveyor.errors import PermanentError, SubmitRefused, TemporaryError
from conveyor.jobs import JobState
from conveyor.store.base import JobFilter
from conveyor.submit import SubmitRequest
from conveyor.task import task
from conveyor.testing import InlineConveyor, inline_settings
from tests.support.http import Receiver, http_receiver

KEY = "callbacks-test-key-0123456789"
SECRET = "s3cret-for-signing-callbacks"


@task(name="cbtest.ok")
def ok(n: int) -> dict[str, int]:
    return {"n": n}


@task(name="cbtest.fail")
def fail() -> None:
    raise PermanentError("broken")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


def _conveyor(tmp_path: Path, secret: str = SECRET) -> InlineConveyor:
    return InlineConveyor(inline_settings(data_dir=tmp_path, api_keys=[KEY], webhook_secret=secret))


def _verify_as_a_receiver_does(body: bytes, header: str, secret: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def test_sign_and_verify() -> None:
    body = b'{"id":"x"}'
    signature = sign(body, SECRET)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(body, SECRET, signature)
    assert not verify(body + b" ", SECRET, signature)
    assert not verify(body, "other-secret", signature)
    assert _verify_as_a_receiver_does(body, signature, SECRET)


def test_callback_url_is_refused_without_a_secret(tmp_path: Path) -> None:
    c = _conveyor(tmp_path, secret="")
    with pytest.raises(SubmitRefused, match="CONVEYOR_WEBHOOK_SECRET"):
        c.submitter.submit(SubmitRequest("cbtest.ok", (1,), callback_url="http://127.0.0.1:9/x"))
    app = create_api(c.settings, c.store, c.submitter)
    body = {"task": "cbtest.ok", "args": [1], "callback_url": "http://127.0.0.1:9/x"}
    response = TestClient(app).post(
        "/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["details"] == {"field": "callback_url"}
    assert "CONVEYOR_WEBHOOK_SECRET" in error["message"]
    assert c.store.list_jobs(JobFilter(), 10).items == []


def test_final_state_posts_the_signed_job(tmp_path: Path, receiver: Receiver) -> None:
    c = _conveyor(tmp_path)
    path = f"/done-{uuid.uuid4().hex}"
    job = c.submitter.submit(SubmitRequest("cbtest.ok", (7,), callback_url=receiver.url + path))
    assert job.state is JobState.SUCCEEDED
    (request,) = receiver.to(path)
    assert request.method == "POST"
    assert _verify_as_a_receiver_does(request.body, request.headers[SIGNATURE_HEADER], SECRET)
    payload = json.loads(request.body)
    assert payload["id"] == job.id
    assert payload["state"] == "SUCCEEDED"
    assert payload["result"] == {"n": 7}
    stored = c.store.get_job(job.id)
    assert stored is not None
    assert request.body == callback_body(stored)
    (delivery,) = c.store.list_callback_deliveries(job.id)
    assert (delivery.ok, delivery.status_code, delivery.attempt) == (True, 200, 1)


def test_failed_job_calls_back_too_and_retries_until_delivered(
    tmp_path: Path, receiver: Receiver
) -> None:
    c = _conveyor(tmp_path)
    path = f"/flaky-{uuid.uuid4().hex}"
    receiver.responses[path] = [(503, "busy"), (500, "oops"), (200, "ok")]
    job = c.submitter.submit(SubmitRequest("cbtest.fail", callback_url=receiver.url + path))
    assert job.state is JobState.FAILED
    requests = receiver.to(path)
    assert len(requests) == 3
    assert all(json.loads(r.body)["state"] == "FAILED" for r in requests)
    deliveries = c.store.list_callback_deliveries(job.id)
    assert [(d.attempt, d.ok, d.status_code) for d in deliveries] == [
        (1, False, 503),
        (2, False, 500),
        (3, True, 200),
    ]
    app = create_api(c.settings, c.store, c.submitter)
    shown = TestClient(app).get(
        f"/api/v1/jobs/{job.id}", headers={"Authorization": f"Bearer {KEY}"}
    )
    assert shown.status_code == 200
    body = shown.json()
    assert body["callback_url"] == receiver.url + path
    assert [(cb["attempt"], cb["ok"], cb["status_code"]) for cb in body["callbacks"]] == [
        (1, False, 503),
        (2, False, 500),
        (3, True, 200),
    ]
    assert body["callbacks"][0]["error"] == "answered HTTP 503"


def test_a_4xx_answer_is_not_retried(tmp_path: Path, receiver: Receiver) -> None:
    c = _conveyor(tmp_path)
    path = f"/gone-{uuid.uuid4().hex}"
    receiver.responses[path] = [(410, "gone")]
    job = c.submitter.submit(SubmitRequest("cbtest.ok", (1,), callback_url=receiver.url + path))
    assert len(receiver.to(path)) == 1
    (delivery,) = c.store.list_callback_deliveries(job.id)
    assert (delivery.ok, delivery.status_code) == (False, 410)


def test_jobs_without_callback_url_send_nothing(tmp_path: Path, receiver: Receiver) -> None:
    c = _conveyor(tmp_path)
    job = c.submit("cbtest.ok", 1)
    assert job.state is JobState.SUCCEEDED
    assert receiver.requests == []
    assert c.store.list_callback_deliveries(job.id) == []


def test_delivery_waits_for_the_final_state_and_needs_the_secret(
    tmp_path: Path, receiver: Receiver
) -> None:
    c = _conveyor(tmp_path)
    built = c.submitter.build(SubmitRequest("cbtest.ok", (1,), callback_url=receiver.url + "/x"))
    job = c.store.create_job(built)
    with pytest.raises(TemporaryError, match="not final yet"):
        deliver(c.store, c.settings, job.id)
    assert c.store.mark_started(job.id, 1, "w") and c.store.mark_succeeded(job.id, 1, 1)
    without_secret = inline_settings(data_dir=tmp_path, webhook_secret="")
    with pytest.raises(PermanentError, match="CONVEYOR_WEBHOOK_SECRET"):
        deliver(c.store, without_secret, job.id)
    assert receiver.requests == []
    assert c.store.list_callback_deliveries(job.id) == []
    assert deliver(c.store, c.settings, job.id) == {"delivered": True, "status_code": 200}
    assert [d.attempt for d in c.store.list_callback_deliveries(job.id)] == [1]


def test_delivery_uses_the_app_that_ran_the_job(tmp_path: Path, receiver: Receiver) -> None:
    first = _conveyor(tmp_path / "a")
    _conveyor(tmp_path / "b")  # created later: Celery's current_app now points at this one
    path = f"/first-{uuid.uuid4().hex}"
    job = first.submitter.submit(SubmitRequest("cbtest.ok", (3,), callback_url=receiver.url + path))
    assert len(receiver.to(path)) == 1
    assert [d.ok for d in first.store.list_callback_deliveries(job.id)] == [True]
