"""``celery_client``: the backend's thin layer over ``conveyor.Client``, against the real
HTTP API in-process (jobs run inline, on PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from conveyor import Client
from conveyor.api import create_api
from conveyor.client import JobFailed, ValidationFailed
from conveyor.keys import create_key
from examples.microservice.celery_client import CeleryClient
from tests.examples.microservice.conftest import Service

pytestmark = pytest.mark.integration


class SyncASGI(httpx.BaseTransport):
    """Lets the blocking ``Client`` call an ASGI app in-process."""

    def __init__(self, app: object) -> None:
        self.asgi = httpx.ASGITransport(app=app)  # type: ignore[arg-type]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=request.read()
            )
            response = await self.asgi.handle_async_request(forwarded)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return asyncio.run(call())


@pytest.fixture
def client(service: Service) -> Iterator[CeleryClient]:
    inline = service.inline
    app = create_api(inline.settings, inline.store, inline.submitter)
    key, _ = create_key(inline.store, "backend", ["write"])
    with Client("http://conveyor", key, transport=SyncASGI(app)) as http:
        yield CeleryClient(http)


def test_send_email_returns_an_id_whose_status_and_result_can_be_read(
    client: CeleryClient, service: Service
) -> None:
    task_id = client.send_email(
        to_email="user@example.com", subject="Welcome!", body="Welcome to our service!"
    )
    assert client.get_task_status(task_id) == "SUCCEEDED"
    result = client.get_task_result(task_id)
    assert result["sent"] == 1 and result["to"] == ["user@example.com"]
    assert [m["Subject"] for m in service.mailbox.messages] == ["Welcome!"]
    assert service.inline.store.get_job(task_id) is not None


def test_process_user_data_and_a_failed_job(client: CeleryClient) -> None:
    task_id = client.process_user_data(
        user_id=321, data_type="profile_update", data={"name": "John Doe"}
    )
    assert client.get_task_result(task_id)["fields"] == ["name"]
    # no SMS provider configured: a permanent error, so the job is DEAD at once (no retries)
    failed = client.send_sms(phone_number="+420123456789", message="hi")
    assert client.get_task_status(failed) == "DEAD"
    with pytest.raises(JobFailed, match="CONVEYOR_SMS"):
        client.get_task_result(failed)


def test_bad_arguments_raise_and_queue_nothing(client: CeleryClient, service: Service) -> None:
    with pytest.raises(ValidationFailed):
        client.send_email(to_email="not-an-address", subject="x", body="y")
    with pytest.raises(ValidationFailed):
        client.send_push_notification(user_tokens=[], title="t")
    assert service.mailbox.messages == []
