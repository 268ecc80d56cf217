"""Live updates: each page region re-rendered as a small JSON document, fetched again on
every event of the job stream (or polled every 2 s without it; the queues and schedules
pages, whose changes send no job events, also every few seconds).

``{"html": "..."}`` holds the same template fragment the page was rendered
with, so the page's JavaScript swaps it in without a reload.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from conveyor.api.events import stream_events
from conveyor.dashboard import views
from conveyor.dashboard.access import Viewer
from conveyor.dashboard.deadletters import dead_letter_list
from conveyor.dashboard.deadletters import parse_filters as parse_dead_letter_filters
from conveyor.dashboard.filters import parse_filters
from conveyor.dashboard.pages import job_or_404
from conveyor.dashboard.queues import queues_and_workers
from conveyor.dashboard.schedules import schedule_list
from conveyor.dashboard.session import CSRF_FIELD
from conveyor.dashboard.web import Context, DashboardContext, ViewerDep, base_path
from conveyor.store.observability import EventFilter

router = APIRouter(prefix="/live")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _fragment(
    request: Request, context: DashboardContext, template: str, values: dict[str, Any]
) -> JSONResponse:
    page = {"base": base_path(request), **values}
    html = context.templates.get_template(template).render(page)
    return JSONResponse({"html": html}, headers={"Cache-Control": "no-store"})


@router.get("/events", name="live_events")
async def live_events(request: Request, context: Context, viewer: ViewerDep) -> StreamingResponse:
    """The API's job event stream, for the signed-in dashboard (EventSource sends cookies,
    not bearer keys); new events only — the page re-fetches its fragments on each."""
    start = await run_in_threadpool(context.store.last_job_event_id)
    body = stream_events(context.store, context.settings, request, EventFilter(), start)
    return StreamingResponse(body, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/overview", name="live_overview")
def live_overview(request: Request, context: Context, viewer: ViewerDep) -> JSONResponse:
    values = views.overview(context.store, context.settings, context.cache)
    return _fragment(request, context, "_overview.html", {"viewer": viewer, **values})


@router.get("/jobs", name="live_jobs")
def live_jobs(request: Request, context: Context, viewer: ViewerDep) -> JSONResponse:
    filters = parse_filters(dict(request.query_params))
    values = views.job_list(context.store, context.settings, filters)
    return _fragment(request, context, "_job_rows.html", {"viewer": viewer, **values})


@router.get("/jobs/{job_id}", name="live_job")
def live_job(request: Request, job_id: str, context: Context, viewer: ViewerDep) -> JSONResponse:
    found = job_or_404(context.store, job_id)
    values = views.job_detail(
        context.store, found, viewer, request.query_params.get("replayed_from")
    )
    return _fragment(request, context, "_job.html", {**_forms(viewer), **values})


def _forms(viewer: Viewer) -> dict[str, Any]:
    """What a fragment with buttons needs: who looks, and the CSRF token for the forms."""
    return {"viewer": viewer, "csrf_field": CSRF_FIELD, "csrf_token": viewer.session.csrf}


@router.get("/dead-letters", name="live_dead_letters")
def live_dead_letters(request: Request, context: Context, viewer: ViewerDep) -> JSONResponse:
    filters = parse_dead_letter_filters(dict(request.query_params))
    values = dead_letter_list(context.store, filters)
    return _fragment(request, context, "_dead_letter_rows.html", {**_forms(viewer), **values})


@router.get("/schedules", name="live_schedules")
def live_schedules(request: Request, context: Context, viewer: ViewerDep) -> JSONResponse:
    values = schedule_list(context)
    return _fragment(request, context, "_schedule_rows.html", {**_forms(viewer), **values})


@router.get("/queues", name="live_queues")
def live_queues(request: Request, context: Context, viewer: ViewerDep) -> JSONResponse:
    values = queues_and_workers(context)
    return _fragment(request, context, "_queues.html", {**_forms(viewer), **values})
