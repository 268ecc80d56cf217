"""The dashboard: server-rendered pages over the job store, served at ``/dashboard``.

``create_dashboard`` builds a small FastAPI app that ``conveyor.server`` mounts
into the API process (the API itself never imports the dashboard).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.dashboard.access import Access
from conveyor.dashboard.cache import TtlCache
from conveyor.dashboard.deadletters import router as dead_letters_router
from conveyor.dashboard.live import router as live_router
from conveyor.dashboard.login import router as login_router
from conveyor.dashboard.pages import router as pages_router
from conveyor.dashboard.queues import router as queues_router
from conveyor.dashboard.schedules import router as schedules_router
from conveyor.dashboard.secret import DashboardConfigError, resolve_secret
from conveyor.dashboard.session import SessionSigner
from conveyor.dashboard.web import (
    DashboardContext,
    LoginRequired,
    Refused,
    base_path,
    build_templates,
    render,
)
from conveyor.keys import Authenticator
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.submit import Submitter

__all__ = ["DashboardConfigError", "create_dashboard"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

SECURITY_HEADERS = {
    b"content-security-policy": (
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"same-origin",
}


class SecurityHeaders:
    """Every dashboard response: no framing, no inline scripts, no sniffing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS.items()]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _login_required(request: Request, exc: Exception) -> Response:
    base = base_path(request)
    if request.url.path.startswith(base + "/live/"):
        return JSONResponse({"error": "login required"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    next_path = quote(target, safe="/")
    return RedirectResponse(f"{base}/login?next={next_path}", status_code=303)


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return _error_page(request, exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = "there is no such page" if exc.status_code == 404 else str(exc.detail)
    return _error_page(request, exc.status_code, message, exc.headers)


def _error_page(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    if request.url.path.startswith(base_path(request) + "/live/"):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    context: DashboardContext = request.app.state.dashboard
    values = {"status": status, "message": message}
    response = render(request, context, "error.html", values, status=status)
    response.headers.update(headers or {})
    return response


def create_dashboard(
    settings: Settings,
    store: JobStore,
    submitter: Submitter,
    authenticator: Authenticator,
    *,
    events_url: str | None = None,
) -> FastAPI:
    """The dashboard app (mount it at ``/dashboard``). Raises DashboardConfigError."""
    signer = SessionSigner(resolve_secret(settings), settings.dashboard_session_seconds)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dashboard = DashboardContext(
        settings=settings,
        store=store,
        submitter=submitter,
        signer=signer,
        access=Access(settings, authenticator, signer),
        templates=build_templates(),
        cache=TtlCache(),
        events_url=events_url,
    )
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(SecurityHeaders)
    routers = (
        login_router,
        pages_router,
        dead_letters_router,
        schedules_router,
        queues_router,
        live_router,
    )
    for router in routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
