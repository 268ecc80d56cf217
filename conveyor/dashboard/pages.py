"""The pages: overview, jobs, job detail, and job actions (POST)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from conveyor.dashboard import views
from conveyor.dashboard.access import Viewer
from conveyor.dashboard.actions import ActionRefused, find_action
from conveyor.dashboard.filters import parse_filters
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
from conveyor.errors import ArgumentsInvalid, BrokerUnavailable, SubmitRefused, TaskNotFound
from conveyor.jobs import Job
from conveyor.store.base import JobStore

router = APIRouter()


def job_or_404(store: JobStore, job_id: str) -> Job:
    job = store.get_job(job_id)
    if job is None:
        raise Refused(404, f"there is no job {job_id!r}")
    return job


@router.get("/", response_class=HTMLResponse, name="overview")
def overview(request: Request, context: Context, viewer: ViewerDep) -> HTMLResponse:
    values = views.overview(context.store, context.settings, context.cache)
    return render(
        request, context, "overview.html", {"section": "overview", **values}, viewer=viewer
    )


@router.get("/jobs", response_class=HTMLResponse, name="jobs")
def jobs(request: Request, context: Context, viewer: ViewerDep) -> HTMLResponse:
    filters = parse_filters(dict(request.query_params))
    values = views.job_list(context.store, context.settings, filters)
    return render(request, context, "jobs.html", {"section": "jobs", **values}, viewer=viewer)


@router.get("/jobs/{job_id}", response_class=HTMLResponse, name="job")
def job(request: Request, job_id: str, context: Context, viewer: ViewerDep) -> HTMLResponse:
    found = job_or_404(context.store, job_id)
    replayed_from = request.query_params.get("replayed_from")
    values = views.job_detail(context.store, found, viewer, replayed_from)
    values["notice"] = views.action_notice(request.query_params.get("done"))
    return render(request, context, "job.html", {"section": "jobs", **values}, viewer=viewer)


def _run_action(context: DashboardContext, viewer: Viewer, job_id: str, name: str) -> str:
    """Run action ``name`` on the job; returns where to go next (raises Refused)."""
    action = find_action(name)
    if action is None:
        raise Refused(404, f"there is no action {name!r}")
    require_scope(viewer, action.scope)
    found = job_or_404(context.store, job_id)
    if not action.applies(found):
        raise Refused(409, f"{action.label!r} does not apply to a {found.state.value} job")
    try:
        outcome = action.run(context.submitter, found)
    except ActionRefused as exc:
        raise Refused(exc.status, f"{action.label} was refused: {exc.message}") from exc
    except (TaskNotFound, ArgumentsInvalid, SubmitRefused) as exc:
        raise Refused(422, f"{action.label} was refused: {exc}") from exc
    except BrokerUnavailable as exc:
        raise Refused(503, f"{action.label} failed, the broker is unavailable: {exc}") from exc
    if outcome.job_id == found.id:
        return f"/jobs/{found.id}?done={outcome.notice}"
    return f"/jobs/{outcome.job_id}?{outcome.notice}_from={found.id}"


@router.post("/jobs/{job_id}/actions/{name}", name="job_action")
async def job_action(
    request: Request, job_id: str, name: str, context: Context, viewer: ViewerDep
) -> RedirectResponse:
    form = await read_form(request)
    check_csrf(viewer.session, form)
    target = await run_in_threadpool(_run_action, context, viewer, job_id, name)
    return redirect(request, target)
