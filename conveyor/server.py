"""The API process: the HTTP API with the dashboard mounted at ``/dashboard``.

This is the one place that composes the two; the API never imports the dashboard.
"""

from __future__ import annotations

from fastapi import FastAPI

from conveyor.api import create_api
from conveyor.dashboard import create_dashboard
from conveyor.engine import create_app, import_task_modules
from conveyor.keys import Authenticator
from conveyor.logs import configure_logging
from conveyor.sentry import init_sentry
from conveyor.settings import Settings, load_settings
from conveyor.store import open_store
from conveyor.store.base import JobStore
from conveyor.submit import Submitter
from conveyor.task import TaskRegistry, registry

__all__ = ["DASHBOARD_PATH", "create_server", "server_from_environment"]

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


def server_from_environment() -> FastAPI:
    """The server of one process of ``conveyor api --workers N``: uvicorn starts each
    worker process afresh and calls this. The settings come from the environment and
    config file the command was started with; the command has already refused what
    would stop a worker (no API keys, an unmigrated store, the dashboard's config)."""
    settings = load_settings()
    configure_logging(settings)
    init_sentry(settings)
    import_task_modules(settings)
    store = open_store(settings)
    submitter = Submitter(settings, store, create_app(settings))
    return create_server(settings, store, submitter)
