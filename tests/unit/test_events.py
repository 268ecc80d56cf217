"""The SSE event cursor (ids in order despite out-of-order commits) and request validation."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from conveyor.api import create_api
from conveyor.api.events import GAP_WAIT, EventCursor, format_event
from conveyor.jobs import Job, JobState, utcnow
from conveyor.store.observability import EventFilter, StoredEvent
from conveyor.testing import InlineConveyor, inline_settings

KEY = "events-test-key-0123456789"


def _event(event_id: int) -> StoredEvent:
    return StoredEvent(event_id, "j", "t", "default", JobState.QUEUED, utcnow(), {"attempt": 0})


def test_cursor_delivers_consecutive_ids() -> None:
    cursor = EventCursor(3)
    assert [e.id for e in cursor.take([_event(4), _event(5)], now=0)] == [4, 5]
    assert cursor.last == 5


def test_cursor_waits_for_a_hole_to_fill() -> None:
    cursor = EventCursor(3)
    # id 5 is visible before id 4 commits: nothing after the hole is delivered yet
    assert [e.id for e in cursor.take([_event(5)], now=100)] == []
    assert [e.id for e in cursor.take([_event(4), _event(5)], now=100.5)] == [4, 5]
    assert cursor.gap_since is None


def test_cursor_skips_a_hole_that_never_fills() -> None:
    cursor = EventCursor(3)
    assert cursor.take([_event(6), _event(7)], now=10) == []
    assert cursor.take([_event(6), _event(7)], now=10 + GAP_WAIT / 2) == []
    assert [e.id for e in cursor.take([_event(6), _event(7)], now=10 + GAP_WAIT)] == [6, 7]
    assert cursor.last == 7


def test_format_event_is_one_sse_message() -> None:
    text = format_event(_event(12))
    lines = text.split("\n")
    assert lines[0] == "id: 12"
    assert lines[1] == "event: job"
    assert lines[2].startswith("data: {")
    assert '"state":"QUEUED"' in lines[2]
    assert text.endswith("\n\n")


def test_events_need_read_scope_and_a_numeric_last_event_id(tmp_path: Path) -> None:
    c = InlineConveyor(inline_settings(data_dir=tmp_path, api_keys=[KEY]))
    client = TestClient(create_api(c.settings, c.store, c.submitter))
    assert client.get("/api/v1/events").status_code == 401
    response = client.get(
        "/api/v1/events",
        headers={"Authorization": f"Bearer {KEY}", "Last-Event-ID": "abc"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_last_event_id"


def test_the_api_prunes_events_older_than_the_retention(tmp_path: Path) -> None:
    c = InlineConveyor(inline_settings(data_dir=tmp_path, api_keys=[KEY]))
    old = utcnow() - timedelta(seconds=c.settings.events_retention + 60)
    c.store.create_job(
        Job(id="old", task="t", queue="default", state=JobState.QUEUED, created_at=old)
    )
    c.store.create_job(Job(id="new", task="t", queue="default", state=JobState.QUEUED))
    assert len(c.store.list_job_events(0, EventFilter(), 10)) == 2
    with TestClient(create_api(c.settings, c.store, c.submitter)):  # runs the lifespan
        deadline = time.monotonic() + 5
        while len(c.store.list_job_events(0, EventFilter(), 10)) > 1:
            assert time.monotonic() < deadline, "old event not pruned"
            time.sleep(0.02)
    assert [e.job_id for e in c.store.list_job_events(0, EventFilter(), 10)] == ["new"]
