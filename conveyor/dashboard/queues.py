"""The Queues and workers page: depth, paused flag with pause/resume, consumers; workers
with their queues and active jobs. The same domain calls as ``/api/v1/queues`` and
``/api/v1/workers`` (conveyor.queues, conveyor.inspection)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from conveyor import inspection
from conveyor.dashboard.web import (
    Context,
    DashboardContext,
    Refused,
    ViewerDep,
    check_csrf,
    read_form,
    redirect,
    render,
    require_scope,
)
from conveyor.queues import UnknownQueue, broker_kind, list_queues, set_paused

router = APIRouter()

NOTICES = {
    "paused": "Queue {name} is paused: workers stop taking its jobs within a few seconds.",
    "resumed": "Queue {name} is resumed: workers take its jobs again within a few seconds.",
}
#: How often the page asks again (workers report no events; ms, for the page's script).
POLL_MS = 3000


def queues_and_workers(context: DashboardContext) -> dict[str, Any]:
    """Queues (from the store and the broker) and the workers that answer right now."""
    settings = context.settings
    queues = list_queues(settings, context.store, context.submitter.app)
    workers_error = None
    try:
        workers = inspection.inspect_workers(context.submitter.app, settings.inspect_timeout)
    except inspection.BROKER_ERRORS as exc:
        workers, workers_error = [], f"cannot ask the workers: {exc}"
    return {
        "queues": queues,
        "workers": workers,
        "workers_error": workers_error,
        "broker": broker_kind(settings),
    }


@router.get("/queues", response_class=HTMLResponse, name="queues")
def queues(request: Request, context: Context, viewer: ViewerDep) -> HTMLResponse:
    params = request.query_params
    template = NOTICES.get(params.get("done", ""))
    notice = template.format(name=repr(params.get("name", "")[:200])) if template else None
    values = {"section": "queues", "notice": notice, "poll_ms": POLL_MS}
    values.update(queues_and_workers(context))
    return render(request, context, "queues.html", values, viewer=viewer)


@router.post("/queues/{name}/{change}", name="queue_change")
async def queue_change(
    request: Request, name: str, change: str, context: Context, viewer: ViewerDep
) -> Response:
    if change not in ("pause", "resume"):
        raise Refused(404, f"there is no queue action {change!r}")
    form = await read_form(request)
    check_csrf(viewer.session, form)
    require_scope(viewer, "write")
    try:
        await run_in_threadpool(
            set_paused, context.settings, context.store, name, change == "pause"
        )
    except UnknownQueue as exc:
        raise Refused(404, str(exc)) from None
    done = "paused" if change == "pause" else "resumed"
    return redirect(request, f"/queues?done={done}&name={quote(name, safe='')}")
