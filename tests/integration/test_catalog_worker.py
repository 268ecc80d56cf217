"""Catalog tasks on a real worker (Redis broker, SQLite store), submitted over HTTP and in
process: an email to a real SMTP server, a Telegram message that is rate limited first,
a backend trigger, and a report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conveyor.api import create_api
from conveyor.jobs import JobState
from conveyor.keys import create_key
from tests.support.http import Receiver, http_receiver
from tests.support.services import REDIS_URL, flush_redis
from tests.support.smtp import Mailbox, smtp_server
from tests.support.stack import Client, Stack, running

pytestmark = pytest.mark.integration

TOKEN = "42:worker-test"
SEND = f"/bot{TOKEN}/sendMessage"


@pytest.fixture(scope="module")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailbox]:
    with smtp_server(tmp_path_factory.mktemp("smtp")) as box:
        yield box


@pytest.fixture(scope="module")
def backend() -> Iterator[Receiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox, backend: Receiver
) -> Iterator[Client]:
    flush_redis(4)
    data_dir = tmp_path_factory.mktemp("catalog_worker")
    overrides = {
        "CONVEYOR_BROKER_URL": f"{REDIS_URL}/4",
        "CONVEYOR_SMTP_HOST": "127.0.0.1",
        "CONVEYOR_SMTP_PORT": str(mailbox.port),
        "CONVEYOR_SMTP_FROM": "bot@example.org",
        "CONVEYOR_TELEGRAM_API_URL": backend.url,
        "CONVEYOR_TELEGRAM_BOT_TOKEN": TOKEN,
        "CONVEYOR_HTTP_BASE_URL": backend.url,
        "CONVEYOR_REPORTS_DIR": str(data_dir / "reports"),
    }
    with running(Stack(data_dir, overrides)) as c:
        yield c


@pytest.fixture(scope="module")
def api(client: Client) -> Iterator[tuple[TestClient, str]]:
    key, _ = create_key(client.store, "catalog-tests", ["write"])
    with TestClient(create_api(client.settings, client.store, client.submitter)) as http:
        yield http, key


def test_email_submitted_over_http_arrives_in_the_recipients_language(
    client: Client, api: tuple[TestClient, str], mailbox: Mailbox
) -> None:
    http, key = api
    response = http.post(
        "/api/v1/jobs",
        json={
            "task": "email.send",
            "kwargs": {
                "to": ["olena@example.org"],
                "template": "password_reset",
                "context": {"username": "Олена", "reset_link": "https://app.example/r/1"},
                "recipient": {"locale": "uk", "timezone": "Europe/Kyiv"},
            },
        },
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["queue"] == "email"
    job = client.wait(response.json()["id"])
    assert job.state is JobState.SUCCEEDED, job
    message = next(m for m in mailbox.messages if m["To"] == "olena@example.org")
    assert message["Subject"] == "Скидання пароля"
    text = next(p for p in message.iter_parts() if p.get_content_type() == "text/plain")
    assert "Вітаємо, Олена!" in text.get_content()


def test_invalid_catalog_arguments_are_refused_over_http(
    client: Client, api: tuple[TestClient, str]
) -> None:
    http, key = api
    response = http.post(
        "/api/v1/jobs",
        json={"task": "sms.send", "kwargs": {"to": "not a number", "text": ""}},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 422
    fields = {tuple(d["loc"])[-1] for d in response.json()["error"]["details"]}
    assert {"to", "text"} <= fields


def test_telegram_rate_limit_is_waited_out_by_the_worker(client: Client, backend: Receiver) -> None:
    too_many = {"ok": False, "error_code": 429, "parameters": {"retry_after": 1}}
    ok = {"ok": True, "result": {"message_id": 9}}
    backend.responses[SEND] = [(429, json.dumps(too_many)), (200, json.dumps(ok))]
    job = client.wait(client.submit("telegram.send_message", chat_id=5, text="hi").id)
    assert job.state is JobState.SUCCEEDED, job
    assert job.attempts == 2
    assert job.result["message_id"] == 9
    assert len(backend.to(SEND)) == 2


def test_backend_trigger_and_report(client: Client, backend: Receiver) -> None:
    trigger = client.submit("http.request", method="POST", url="/internal/exchange-rates/update")
    report = client.submit(
        "reports.generate",
        kind="table",
        params={"columns": ["k", "v"], "rows": [["a", 1]], "chart": {"label": "k", "value": "v"}},
    )
    assert client.wait(trigger.id).state is JobState.SUCCEEDED
    done = client.wait(report.id)
    assert done.state is JobState.SUCCEEDED, done
    assert Path(done.result["path"]).read_text().count("<svg") == 1
    assert backend.to("/internal/exchange-rates/update")
