"""The API process: the HTTP API with the dashboard mounted at ``/dashboard``.

This is the one place that composes the two; the API never imports the dashboard.
"""

from __future__ import annotations

from fastapi import FastAPI

from conveyor.api import create_api
from conveyor.dashboard import create_dashboard
from conveyor.keys import Authenticator
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.submit import Submitter
from conveyor.task import TaskRegistry, registry

__all__ = ["DASHBOARD_PATH", "create_server"]

DASHBOARD_PATH = "/dashboard"


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
        # the dashboard's own relay of the event stream: EventSource sends the session
        # cookie, never a bearer key, so it cannot use /api/v1/events directly
        events_url = DASHBOARD_PATH + "/live/events"
        dashboard = create_dashboard(settings, store, submitter, auth, events_url=events_url)
        app.mount(DASHBOARD_PATH, dashboard)
    return app
