"""The Schedules page: list with next/last run, pause/resume, run now, edit.

Every change goes through :class:`conveyor.schedule_manager.ScheduleManager`,
exactly as the API's ``/api/v1/schedules`` routes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from conveyor.dashboard.forms import FormError, describe_refusal, describe_validation, json_value
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
from conveyor.schedule_manager import ScheduleManager, ScheduleNotFound
from conveyor.schedules import Schedule

router = APIRouter()

TIMINGS = ("cron", "interval", "at")
NOTICES = {
    "paused": "Schedule {name} is paused: it submits nothing until resumed.",
    "resumed": "Schedule {name} is running again.",
    "run_now": "Schedule {name} submitted a job now.",
    "saved": "Schedule {name} was saved.",
}


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def manager(context: DashboardContext) -> ScheduleManager:
    return ScheduleManager(context.store, context.submitter)


def notice(params: Mapping[str, str]) -> str | None:
    template = NOTICES.get(params.get("done", ""))
    return template.format(name=repr(params.get("name", "")[:200])) if template else None


def _form_values(schedule: Schedule) -> dict[str, str]:
    at = schedule.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if schedule.at else ""
    return {
        "timing": schedule.kind,
        "cron": schedule.cron or "",
        "interval": f"{schedule.interval:g}" if schedule.interval is not None else "",
        "at": at,
        "timezone": schedule.timezone,
        "args": json.dumps(list(schedule.args), ensure_ascii=False),
        "kwargs": json.dumps(dict(schedule.kwargs), indent=2, ensure_ascii=False, sort_keys=True),
    }


def changes_from(form: Mapping[str, str]) -> dict[str, Any]:
    """The form as ScheduleManager.update changes; raises FormErrors naming each bad field."""
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    timing = form.get("timing", "")
    if timing not in TIMINGS:
        errors["timing"] = "choose cron, interval or at"
    value = form.get(timing, "").strip() if timing in TIMINGS else ""
    if timing in TIMINGS and not value:
        errors[timing] = f"give the {timing} of the schedule"
    elif timing == "interval":
        try:
            changes["interval"] = float(value)
        except ValueError:
            errors["interval"] = f"a number of seconds, not {value!r}"
    elif timing in ("cron", "at"):
        changes[timing] = value
    if form.get("timezone", "").strip():
        changes["timezone"] = form["timezone"].strip()
    try:
        changes["args"] = json_value("args", form.get("args", ""), list)
    except FormError as exc:
        errors["args"] = exc.message
    try:
        changes["kwargs"] = json_value("kwargs", form.get("kwargs", ""), dict)
    except FormError as exc:
        errors["kwargs"] = exc.message
    if errors:
        raise FormErrors(errors)
    return changes


def save(context: DashboardContext, name: str, form: Mapping[str, str]) -> Schedule:
    """Validate and store the edited schedule (raises FormErrors, ScheduleNotFound)."""
    changes = changes_from(form)
    try:
        return manager(context).update(name, changes)
    except ValidationError as exc:
        raise FormErrors(describe_validation(exc)) from None
    except (ArgumentsInvalid, SubmitRefused, TaskNotFound) as exc:
        raise FormErrors({"kwargs": describe_refusal(exc)}) from None


def schedule_or_404(context: DashboardContext, name: str) -> Schedule:
    try:
        return manager(context).get(name)
    except ScheduleNotFound as exc:
        raise Refused(404, str(exc)) from None


def schedule_list(context: DashboardContext) -> dict[str, Any]:
    return {"schedules": sorted(manager(context).list(), key=lambda s: s.name)}


@router.get("/schedules", response_class=HTMLResponse, name="schedules")
def schedules(request: Request, context: Context, viewer: ViewerDep) -> HTMLResponse:
    values = {
        "section": "schedules",
        "notice": notice(request.query_params),
        **schedule_list(context),
    }
    values["run_job"] = request.query_params.get("job") if values["notice"] else None
    return render(request, context, "schedules.html", values, viewer=viewer)


def _edit_page(
    request: Request,
    context: DashboardContext,
    viewer: ViewerDep,
    schedule: Schedule,
    form: Mapping[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    values = {
        "section": "schedules",
        "schedule": schedule,
        "form": dict(form) if form is not None else _form_values(schedule),
        "errors": errors or {},
        "timings": TIMINGS,
    }
    status = 422 if errors else 200
    return render(request, context, "schedule.html", values, viewer=viewer, status=status)


@router.get("/schedules/{name}", response_class=HTMLResponse, name="schedule")
def schedule(request: Request, name: str, context: Context, viewer: ViewerDep) -> HTMLResponse:
    return _edit_page(request, context, viewer, schedule_or_404(context, name))


@router.post("/schedules/{name}/edit", name="schedule_edit")
async def schedule_edit(
    request: Request, name: str, context: Context, viewer: ViewerDep
) -> Response:
    form = await read_form(request)
    check_csrf(viewer.session, form)
    require_scope(viewer, "write")
    current = await run_in_threadpool(schedule_or_404, context, name)
    try:
        await run_in_threadpool(save, context, name, form)
    except FormErrors as exc:
        return await run_in_threadpool(
            _edit_page, request, context, viewer, current, form, exc.errors
        )
    except ScheduleNotFound as exc:
        raise Refused(404, str(exc)) from None
    return redirect(request, f"/schedules?done=saved&name={_q(name)}")


def _q(text: str) -> str:
    return quote(text, safe="")


def _change(context: DashboardContext, name: str, change: str) -> str:
    """Pause, resume or run ``name`` now; returns the query string of the notice."""
    schedules = manager(context)
    try:
        if change == "pause":
            schedules.pause(name)
            return f"done=paused&name={_q(name)}"
        if change == "resume":
            schedules.resume(name)
            return f"done=resumed&name={_q(name)}"
        job = schedules.run_now(name)
    except ScheduleNotFound as exc:
        raise Refused(404, str(exc)) from None
    except (ArgumentsInvalid, SubmitRefused, TaskNotFound) as exc:
        raise Refused(422, f"the schedule's job was refused: {describe_refusal(exc)}") from exc
    except BrokerUnavailable as exc:
        raise Refused(503, f"nothing was submitted, the broker is unavailable: {exc}") from exc
    return f"done=run_now&name={_q(name)}&job={_q(job.id)}"


@router.post("/schedules/{name}/{change}", name="schedule_change")
async def schedule_change(
    request: Request, name: str, change: str, context: Context, viewer: ViewerDep
) -> Response:
    if change not in ("pause", "resume", "run"):
        raise Refused(404, f"there is no schedule action {change!r}")
    form = await read_form(request)
    check_csrf(viewer.session, form)
    require_scope(viewer, "write")
    query = await run_in_threadpool(_change, context, name, change)
    return redirect(request, f"/schedules?{query}")
