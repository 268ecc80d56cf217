"""``/login`` and ``/logout``: start and end a session (both forms are CSRF-protected)."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from conveyor.dashboard.session import COOKIE_NAME
from conveyor.dashboard.web import (
    Context,
    DashboardContext,
    base_path,
    check_csrf,
    current_session,
    read_form,
    redirect,
    render,
    set_session_cookie,
)

log = structlog.get_logger("conveyor.dashboard")
router = APIRouter()


def _safe_next(request: Request, target: str | None) -> str:
    """Only a path inside the dashboard (never another site) to go to after login."""
    base = base_path(request)
    inside = target is not None and target.startswith(base + "/")
    if inside and target is not None and "\\" not in target and "//" not in target:
        return target
    return base + "/"


def _login_page(
    request: Request, context: DashboardContext, error: str | None = None, status: int = 200
) -> HTMLResponse:
    session = current_session(request, context)
    if session is None:
        session = context.signer.new()
    values = {
        "error": error,
        "has_user": context.access.has_user,
        "next": _safe_next(request, request.query_params.get("next")),
        "csrf_token": session.csrf,
    }
    response = render(request, context, "login.html", values, status=status)
    set_session_cookie(response, request, context, session)
    return response


@router.get("/login", response_class=HTMLResponse, name="login")
def login_form(request: Request, context: Context) -> HTMLResponse:
    return _login_page(request, context)


def _credential(context: DashboardContext, form: dict[str, str]) -> str | None:
    if form.get("api_key"):
        return context.access.login_with_key(form["api_key"])
    if form.get("username") or form.get("password"):
        return context.access.login_with_password(
            form.get("username", ""), form.get("password", "")
        )
    return None


@router.post("/login", name="login_submit")
async def login_submit(request: Request, context: Context) -> Response:
    form = await read_form(request)
    check_csrf(current_session(request, context), form)
    credential = await run_in_threadpool(_credential, context, form)
    if credential is None:
        log.info("dashboard_login_refused", client=request.client.host if request.client else None)
        return _login_page(request, context, "Those credentials were not accepted.", 401)
    log.info("dashboard_login", kind=credential.split(":", 1)[0])
    response = RedirectResponse(_safe_next(request, form.get("next")), status_code=303)
    set_session_cookie(response, request, context, context.signer.logged_in(credential))
    return response


@router.post("/logout", name="logout")
async def logout(request: Request, context: Context) -> Response:
    form = await read_form(request)
    check_csrf(current_session(request, context), form)
    response = redirect(request, "/login")
    response.delete_cookie(COOKIE_NAME, path=base_path(request) or "/")
    return response
