"""The Dead letters page: list with filters, replay one (with edited arguments), replay all
matching, discard. Every change goes through :mod:`conveyor.deadletters`, as the API's."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from conveyor.dashboard.forms import FormError, describe_refusal, json_value
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
from conveyor.deadletters import DeadLetterError, replay, replay_matching
from conveyor.errors import ArgumentsInvalid, BrokerUnavailable, SubmitRefused, TaskNotFound
from conveyor.store.base import JobStore
from conveyor.store.reliability import DeadLetter, DeadLetterFilter, decode_dl_cursor

router = APIRouter()

PAGE_SIZE = 50
#: The most entries one "replay all" replays (as the API's bulk replay).
MAX_BULK_REPLAY = 1000
FIELDS = ("task", "queue", "reason", "q", "replayed")
MAX_TEXT = 200
REPLAYED_CHOICES = {"": None, "no": False, "yes": True}


@dataclass(frozen=True, slots=True)
class DeadLetterFilters:
    values: dict[str, str]
    flt: DeadLetterFilter
    cursor: str | None
    errors: dict[str, str] = field(default_factory=dict)

    def link(self, cursor: str | None = None, **extra: str) -> str:
        params = {k: v for k, v in self.values.items() if v}
        if cursor:
            params["cursor"] = cursor
        params.update(extra)
        return urlencode(params)


def parse_filters(params: dict[str, str]) -> DeadLetterFilters:
    values = {name: params.get(name, "").strip()[:MAX_TEXT] for name in FIELDS}
    errors: dict[str, str] = {}
    if values["replayed"] not in REPLAYED_CHOICES:
        errors["replayed"] = "choose any, yes or no"
        values["replayed"] = ""
    flt = DeadLetterFilter(
        task=values["task"] or None,
        queue=values["queue"] or None,
        reason=values["reason"] or None,
        text=values["q"] or None,
        replayed=REPLAYED_CHOICES[values["replayed"]],
    )
    cursor = params.get("cursor") or None
    if cursor is not None:
        try:
            decode_dl_cursor(cursor)
        except ValueError:
            errors["cursor"] = "that page link is not valid any more; showing the newest"
            cursor = None
    return DeadLetterFilters(values, flt, cursor, errors)


#: What the list says after an action (``?done=``); counts come from ``?count=``/``?failed=``.
NOTICES = {
    "discarded": "The dead letter was discarded.",
    "replayed": "{count} dead letter(s) replayed as new jobs.",
    "replayed_with_failures": "{count} dead letter(s) replayed; {failed} could not be: {error}",
}


def notice(params: dict[str, str]) -> str | None:
    template = NOTICES.get(params.get("done", ""))
    if template is None:
        return None

    def number(name: str) -> int:
        value = params.get(name, "0")
        return int(value) if value.isdigit() else 0

    error = params.get("error", "")[:300]
    return template.format(count=number("count"), failed=number("failed"), error=error)


def dead_letter_list(store: JobStore, filters: DeadLetterFilters) -> dict[str, Any]:
    page = store.list_dead_letters(filters.flt, PAGE_SIZE, filters.cursor)
    return {
        "entries": page.items,
        "filters": filters,
        "next_link": filters.link(page.next_cursor) if page.next_cursor else None,
        "first_page": filters.cursor is None,
    }


def entry_or_404(store: JobStore, dead_letter_id: str) -> DeadLetter:
    entry = store.get_dead_letter(dead_letter_id)
    if entry is None:
        raise Refused(404, f"there is no dead letter {dead_letter_id!r}")
    return entry


def _detail(
    request: Request,
    context: DashboardContext,
    viewer: ViewerDep,
    entry: DeadLetter,
    kwargs_text: str | None = None,
    error: FormError | None = None,
) -> HTMLResponse:
    attempts = context.store.list_attempts([entry.job_id]).get(entry.job_id, [])
    values = {
        "section": "dead-letters",
        "entry": entry,
        "attempts": sorted(attempts, key=lambda a: a.attempt, reverse=True),
        "kwargs_text": kwargs_text
        if kwargs_text is not None
        else json.dumps(dict(entry.kwargs), indent=2, ensure_ascii=False, sort_keys=True),
        "form_error": error,
    }
    status = 422 if error else 200
    return render(request, context, "dead_letter.html", values, viewer=viewer, status=status)


@router.get("/dead-letters", response_class=HTMLResponse, name="dead_letters")
def dead_letters(request: Request, context: Context, viewer: ViewerDep) -> HTMLResponse:
    params = dict(request.query_params)
    filters = parse_filters(params)
    values = dead_letter_list(context.store, filters)
    page = {"section": "dead-letters", "notice": notice(params), **values}
    return render(request, context, "dead_letters.html", page, viewer=viewer)


@router.get("/dead-letters/{dead_letter_id}", response_class=HTMLResponse, name="dead_letter")
def dead_letter(
    request: Request, dead_letter_id: str, context: Context, viewer: ViewerDep
) -> HTMLResponse:
    return _detail(request, context, viewer, entry_or_404(context.store, dead_letter_id))


def _replay_one(context: DashboardContext, entry: DeadLetter, kwargs_text: str) -> str:
    """Replay ``entry`` with the edited keyword arguments; returns the new job's id."""
    kwargs = json_value("kwargs", kwargs_text, dict)
    try:
        job = replay(context.store, context.submitter, entry.job_id, kwargs)
    except (ArgumentsInvalid, SubmitRefused, TaskNotFound) as exc:
        raise FormError("kwargs", describe_refusal(exc)) from None
    except DeadLetterError as exc:
        raise Refused(404 if exc.code == "dead_letter_not_found" else 409, exc.message) from None
    except BrokerUnavailable as exc:
        raise Refused(503, f"nothing was replayed, the broker is unavailable: {exc}") from exc
    return job.id


@router.post("/dead-letters/{dead_letter_id}/replay", name="dead_letter_replay")
async def dead_letter_replay(
    request: Request, dead_letter_id: str, context: Context, viewer: ViewerDep
) -> Response:
    form = await read_form(request)
    check_csrf(viewer.session, form)
    require_scope(viewer, "write")
    entry = await run_in_threadpool(entry_or_404, context.store, dead_letter_id)
    if entry.replayed_job_id is not None:
        raise Refused(409, f"this dead letter was already replayed as job {entry.replayed_job_id}")
    kwargs_text = form.get("kwargs", "")
    try:
        job_id = await run_in_threadpool(_replay_one, context, entry, kwargs_text)
    except FormError as exc:
        return await run_in_threadpool(_detail, request, context, viewer, entry, kwargs_text, exc)
    return redirect(request, f"/jobs/{job_id}")


@router.post("/dead-letters/{dead_letter_id}/discard", name="dead_letter_discard")
async def dead_letter_discard(
    request: Request, dead_letter_id: str, context: Context, viewer: ViewerDep
) -> Response:
    form = await read_form(request)
    check_csrf(viewer.session, form)
    require_scope(viewer, "write")
    if not await run_in_threadpool(context.store.delete_dead_letter, dead_letter_id):
        raise Refused(404, f"there is no dead letter {dead_letter_id!r}")
    return redirect(request, "/dead-letters?done=discarded")


@router.post("/dead-letters/replay-all", name="dead_letters_replay_all")
async def dead_letters_replay_all(
    request: Request, context: Context, viewer: ViewerDep
) -> Response:
    form = await read_form(request)
    check_csrf(viewer.session, form)
    require_scope(viewer, "write")
    filters = parse_filters(form)
    if filters.errors:
        raise Refused(422, "; ".join(filters.errors.values()))
    result = await run_in_threadpool(
        replay_matching, context.store, context.submitter, filters.flt, MAX_BULK_REPLAY
    )
    done = {"done": "replayed", "count": str(len(result.replayed))}
    if result.failed:
        done.update(done="replayed_with_failures", failed=str(len(result.failed)))
        done["error"] = result.failed[0][1][:200]
    return redirect(request, "/dead-letters?" + filters.link(**done))
