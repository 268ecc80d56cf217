"""The API process: the HTTP API with the dashboard mounted at ``/dashboard``.

This is the one place that composes the two; the API never imports the dashboard.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import Route

from conveyor.api import create_api
from conveyor.dashboard import create_dashboard
from conveyor.keys import Authenticator
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.submit import Submitter
from conveyor.task import TaskRegistry, registry

__all__ = ["DASHBOARD_PATH", "EVENTS_PATH", "create_server"]

DASHBOARD_PATH = "/dashboard"
#: The API's server-sent event stream; the dashboard listens to it when the API has it.
EVENTS_PATH = "/api/v1/events"


def has_route(app: FastAPI, path: str) -> bool:
    return any(isinstance(route, Route) and route.path == path for route in app.routes)


def create_server(
    settings: Settings,
    store: JobStore,
    submitter: Submitter,
    tasks: TaskRegistry = registry,
    authenticator: Authenticator | None = None,
) -> FastAPI:
    """The API, plus the dashboard unless ``dashboard_enabled`` is off.

    Raises ``conveyor.dashboard.DashboardConfigError`` when the dashboard cannot
    start safely (no secret key in production).
    """
    auth = authenticator or Authenticator(settings, store)
    app = create_api(settings, store, submitter, tasks, authenticator=auth)
    if settings.dashboard_enabled:
        events_url = EVENTS_PATH if has_route(app, EVENTS_PATH) else None
        dashboard = create_dashboard(settings, store, submitter, auth, events_url=events_url)
        app.mount(DASHBOARD_PATH, dashboard)
    return app
