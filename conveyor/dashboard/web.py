"""Plumbing every dashboard route shares: context, templates, the viewer, CSRF, errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from conveyor.dashboard.access import Access, Viewer
from conveyor.dashboard.cache import TtlCache
from conveyor.dashboard.nav import NAV
from conveyor.dashboard.session import COOKIE_NAME, CSRF_FIELD, Session, SessionSigner, csrf_ok
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.submit import Submitter

MAX_FORM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class DashboardContext:
    settings: Settings
    store: JobStore
    submitter: Submitter
    signer: SessionSigner
    access: Access
    templates: Jinja2Templates
    #: Short-lived cache of the overview's aggregates.
    cache: TtlCache
    #: URL of the server-sent event stream when the API has one, else None (poll only).
    events_url: str | None


class LoginRequired(Exception):
    """No valid session: HTML pages redirect to the login form, JSON answers 401."""


class Refused(Exception):
    """A request the viewer may not make (403) or that names nothing (404)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def build_templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("conveyor.dashboard", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty_json"] = _json
    env.filters["when"] = _when
    env.globals["nav"] = NAV
    return Jinja2Templates(env=env)


def get_context(request: Request) -> DashboardContext:
    context: DashboardContext = request.app.state.dashboard
    return context


Context = Annotated[DashboardContext, Depends(get_context)]


def base_path(request: Request) -> str:
    """Where the dashboard is mounted (e.g. ``/dashboard``)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def current_session(request: Request, context: DashboardContext) -> Session | None:
    return context.signer.loads(request.cookies.get(COOKIE_NAME))


def current_viewer(request: Request, context: Context) -> Viewer:
    """The logged-in viewer (a plain def: resolving the credential may query the store)."""
    session = current_session(request, context)
    if session is None or session.credential is None:
        raise LoginRequired
    principal = context.access.principal(session.credential)
    if principal is None:
        raise LoginRequired
    return Viewer(principal, session)


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a dict (last value wins)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, "the form is too large")
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def check_csrf(session: Session | None, form: dict[str, str]) -> None:
    if not csrf_ok(session, form.get(CSRF_FIELD)):
        raise Refused(403, "the form has expired or did not come from this dashboard; reload it")


def require_scope(viewer: Viewer, scope: str) -> None:
    if not viewer.principal.allows(scope):
        raise Refused(
            403, f"your key lacks the {scope!r} scope: this dashboard is read-only for you"
        )


def set_session_cookie(
    response: Response, request: Request, context: DashboardContext, session: Session
) -> None:
    response.set_cookie(
        COOKIE_NAME,
        context.signer.dumps(session),
        max_age=context.signer.lifetime,
        path=base_path(request) or "/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def render(
    request: Request,
    context: DashboardContext,
    template: str,
    values: dict[str, Any],
    *,
    viewer: Viewer | None = None,
    status: int = 200,
) -> HTMLResponse:
    session = viewer.session if viewer else current_session(request, context)
    page = {
        "base": base_path(request),
        "viewer": viewer,
        "csrf_field": CSRF_FIELD,
        "csrf_token": session.csrf if session else "",
        "events_url": context.events_url,
        **values,
    }
    response = context.templates.TemplateResponse(request, template, page, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(base_path(request) + path, status_code=303)
