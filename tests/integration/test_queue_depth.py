"""Queue depth straight from the broker: Redis (priority sub-queues), RabbitMQ (passive)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from conveyor.engine import create_app, import_task_modules
from conveyor.inspection import broker_reachable, queue_depths
from conveyor.store.memory import MemoryStore
from conveyor.submit import SubmitRequest, Submitter
from conveyor.testing import inline_settings
from tests.support.services import AMQP_URL, REDIS_URL, flush_redis, require

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_depth_counts_waiting_messages(broker: str, tmp_path: Path) -> None:
    if broker == "redis":
        flush_redis(6)
        url = f"{REDIS_URL}/6"
    else:
        require("rabbitmq")
        url = AMQP_URL
    unused = f"unused-{uuid.uuid4().hex[:8]}"
    settings = inline_settings(
        data_dir=tmp_path,
        broker_url=url,
        queues=["default", "email", unused],
    )
    import_task_modules(settings)
    app = create_app(settings)
    app.control.purge()
    try:
        submitter = Submitter(settings, MemoryStore(), app)
        for priority in (0, 5, 9):  # Redis keeps each priority in its own list
            submitter.submit(
                SubmitRequest("webhook.post", kwargs=_kwargs(), queue="default", priority=priority)
            )
        submitter.submit(SubmitRequest("webhook.post", kwargs=_kwargs(), queue="email"))
        expected = {"default": 3, "email": 1, unused: 0}
        deadline = time.monotonic() + 5  # RabbitMQ counts a publish a moment later
        depths = queue_depths(app, settings.queues)
        while depths != expected and time.monotonic() < deadline:
            time.sleep(0.1)
            depths = queue_depths(app, settings.queues)
        assert depths == expected
        assert broker_reachable(app) is None
    finally:
        app.control.purge()


def _kwargs() -> dict[str, object]:
    return {"url": "http://127.0.0.1:9/x", "payload": {}}
