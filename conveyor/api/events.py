"""``GET /api/v1/events``: job state changes as Server-Sent Events.

Every state change is appended to the store's ``job_events`` log in the same
transaction as the change, by whichever process made it (API, any worker, the
scheduler). A stream polls that log by id every ``CONVEYOR_EVENTS_POLL_INTERVAL``
seconds, so it works across processes with every broker; ids are delivered in
order even when transactions commit out of order (see ``EventCursor``). Each event carries its
log id as the SSE ``id``; a client reconnecting with ``Last-Event-ID`` gets every
event after it, as long as it is younger than ``CONVEYOR_EVENTS_RETENTION``
(at least 10 minutes). Without ``Last-Event-ID`` a stream starts with new events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from conveyor.api.auth import require
from conveyor.api.context import ApiContext, Context
from conveyor.api.errors import ApiError, error_responses
from conveyor.jobs import utcnow
from conveyor.settings import Settings
from conveyor.store.base import JobStore, StoreError
from conveyor.store.observability import PRUNE_INTERVAL, EventFilter, StoredEvent

log = structlog.get_logger("conveyor.api.events")

router = APIRouter(prefix="/api/v1/events", tags=["events"])

BATCH = 500
KEEPALIVE_SECONDS = 15.0
RECONNECT_MS = 1000
#: Seconds a hole in the event ids is waited for before it is skipped (see ``EventCursor``).
GAP_WAIT = 2.0


@dataclass
class EventCursor:
    """Where a stream is in the event log, delivering ids strictly in order.

    Ids are taken when a transaction inserts, but transactions may commit out of
    order (PostgreSQL): id 11 can be visible before id 10. So the cursor only moves
    over consecutive ids; a hole is waited for up to ``GAP_WAIT`` seconds (a rolled
    back transaction or a pruned event never fills it) and then skipped.
    """

    last: int
    gap_since: float | None = None

    def take(self, events: Sequence[StoredEvent], now: float) -> list[StoredEvent]:
        """The events (ordered by id) that can be delivered now; advances the cursor."""
        ready: list[StoredEvent] = []
        for event in events:
            if event.id != self.last + 1:
                if self.gap_since is None:
                    self.gap_since = now
                if now - self.gap_since < GAP_WAIT:
                    break
            self.gap_since = None
            self.last = event.id
            ready.append(event)
        return ready


def format_event(event: StoredEvent) -> str:
    payload = {
        "id": event.id,
        "job_id": event.job_id,
        "task": event.task,
        "queue": event.queue,
        "state": event.state.value,
        "at": event.at.isoformat(),
        "data": dict(event.data),
    }
    return f"id: {event.id}\nevent: job\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _start_id(last_event_id: str | None) -> int | None:
    if last_event_id is None or not last_event_id.strip():
        return None
    try:
        value = int(last_event_id)
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError(
            422,
            "invalid_last_event_id",
            "Last-Event-ID must be the id of an event received earlier",
            {"last_event_id": last_event_id},
        )
    return value


async def _poll(store: JobStore, cursor: EventCursor) -> tuple[list[StoredEvent], bool]:
    """The next deliverable events (unfiltered, to see holes in the ids) and whether more wait."""
    try:
        found = await run_in_threadpool(store.list_job_events, cursor.last, EventFilter(), BATCH)
    except StoreError as exc:
        log.warning("events_poll_failed", error=str(exc))
        return [], False
    ready = cursor.take(found, time.monotonic())
    return ready, len(found) == BATCH and len(ready) == len(found)


async def stream_events(
    store: JobStore, settings: Settings, request: Request, flt: EventFilter, start: int
) -> AsyncIterator[str]:
    """The SSE body: every job event after ``start`` matching ``flt``, until the client leaves.

    Also served to the dashboard (with its session instead of a bearer key).
    """
    interval = settings.events_poll_interval
    cursor = EventCursor(start)
    yield f"retry: {RECONNECT_MS}\n: stream of job events after id {start}\n\n"
    quiet = 0.0
    while not await request.is_disconnected():
        ready, more = await _poll(store, cursor)
        matching = [event for event in ready if flt.matches(event)]
        for event in matching:
            yield format_event(event)
        if more:
            continue
        quiet = 0.0 if matching else quiet + interval
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": keep-alive\n\n"
        await asyncio.sleep(interval)


@router.get(
    "",
    dependencies=[Depends(require("read"))],
    responses=error_responses(401, 403, 422, 503),
    response_class=StreamingResponse,
    summary="Job events (Server-Sent Events)",
)
async def job_events(
    request: Request,
    context: Context,
    task: Annotated[str | None, Query(description="Only jobs of this task.")] = None,
    queue: Annotated[str | None, Query(description="Only jobs in this queue.")] = None,
    job_id: Annotated[str | None, Query(description="Only this job.")] = None,
    last_event_id: Annotated[
        str | None, Header(description="Resume after this event id (sent by EventSource).")
    ] = None,
) -> StreamingResponse:
    """A `text/event-stream` of job state changes: `id: <n>`, `event: job`, `data: {...}`."""
    start = _start_id(last_event_id)
    if start is None:
        start = await run_in_threadpool(context.store.last_job_event_id)
    flt = EventFilter(task=task, queue=queue, job_id=job_id)
    return StreamingResponse(
        stream_events(context.store, context.settings, request, flt, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _prune_forever(context: ApiContext) -> None:
    retention = timedelta(seconds=context.settings.events_retention)
    while True:
        try:
            pruned = await run_in_threadpool(context.store.prune_job_events, utcnow() - retention)
            if pruned:
                log.debug("job_events_pruned", count=pruned)
        except StoreError as exc:
            log.warning("job_events_prune_failed", error=str(exc))
        await asyncio.sleep(PRUNE_INTERVAL)


@asynccontextmanager
async def prune_events(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan of the API: prune job events older than the retention, once a minute."""
    task = asyncio.create_task(_prune_forever(app.state.conveyor))
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
