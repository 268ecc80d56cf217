"""The live-update script with an event stream that answers, and one that refuses.

A stand-in ``GET /api/v1/events`` (the real one belongs to the observability
feature) runs in-process next to the dashboard: while the stream is open the
script refreshes on each event instead of polling every 2 s; when the stream
answers 401 it falls back to polling.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse
from playwright.sync_api import Page, expect

from conveyor.api import create_api
from conveyor.dashboard import create_dashboard
from conveyor.engine import create_app
from conveyor.keys import Authenticator, create_key
from conveyor.server import DASHBOARD_PATH
from conveyor.settings import load_settings
from conveyor.store.memory import MemoryStore
from conveyor.submit import SubmitRequest, Submitter
from tests.browser.conftest import SECRET, log_in
from tests.support import tasks as test_tasks
from tests.support.procs import free_port

pytestmark = pytest.mark.browser

#: a stand-in event stream whose ticks the test counts (the server's own relay is
#: /dashboard/live/events)
FAKE_EVENTS_PATH = "/test-events"


@dataclass
class EventServer:
    url: str
    key: str
    submitter: Submitter
    #: events sent per stream; the test reads it to tell SSE from polling
    streams: list[int]


def _build(tmp_path: Path, streams: list[int], allow: bool) -> tuple[FastAPI, str, Submitter]:
    settings = load_settings(
        data_dir=tmp_path,
        broker_url="memory://",
        database_url="memory://",
        result_backend="cache+memory://",
        secret_key=SECRET,
        imports=[test_tasks.__name__],
    )
    store = MemoryStore()
    submitter = Submitter(settings, store, create_app(settings))
    auth = Authenticator(settings, store)
    api = create_api(settings, store, submitter, authenticator=auth)

    async def ticks() -> AsyncIterator[str]:
        streams.append(0)
        yield "retry: 60000\n\n"
        while True:
            await asyncio.sleep(0.3)
            streams[-1] += 1
            yield "event: job.updated\ndata: {}\n\n"

    @api.get(FAKE_EVENTS_PATH)
    def events() -> Response:
        if not allow:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return StreamingResponse(ticks(), media_type="text/event-stream")

    dashboard = create_dashboard(settings, store, submitter, auth, events_url=FAKE_EVENTS_PATH)
    api.mount(DASHBOARD_PATH, dashboard)
    key, _ = create_key(store, "reader", ["read"])
    return api, key, submitter


@pytest.fixture(params=[True, False], ids=["stream", "refused"])
def event_server(
    request: pytest.FixtureRequest, tmp_path: Path, chromium: Path
) -> Iterator[EventServer]:
    streams: list[int] = []
    app, key, submitter = _build(tmp_path, streams, allow=request.param)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "in-process server did not start"
        time.sleep(0.05)
    try:
        yield EventServer(f"http://127.0.0.1:{port}", key, submitter, streams)
    finally:
        server.should_exit = True
        thread.join(10)


def test_live_updates_follow_the_event_stream_or_fall_back_to_polling(
    page: Page, event_server: EventServer, request: pytest.FixtureRequest
) -> None:
    log_in(page, event_server.url, event_server.key)
    page.goto(event_server.url + "/dashboard/jobs")
    streaming = request.node.callspec.params["event_server"]
    mode = "live (event stream)" if streaming else "live (polling)"
    expect(page.locator("#live-status")).to_contain_text(mode)
    job = event_server.submitter.submit(SubmitRequest("tests.echo", kwargs={"value": "sse"}))
    expect(page.locator(f'tr[data-job-id="{job.id}"]')).to_be_visible(timeout=10_000)
    if streaming:
        # the 30 s safety poll cannot have fired: an event brought the row
        assert event_server.streams and event_server.streams[-1] > 0
