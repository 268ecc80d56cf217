"""The HTTP API: a FastAPI app factory, one router module per resource.

The API only validates, records and enqueues; it never imports worker code.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from conveyor.api.batch import router as batch_router
from conveyor.api.cancel import router as cancel_router
from conveyor.api.context import ApiContext
from conveyor.api.deadletters import router as dead_letters_router
from conveyor.api.errors import error_responses, handle_error, install_error_handlers
from conveyor.api.events import prune_events
from conveyor.api.events import router as events_router
from conveyor.api.fanout import router as fanout_router
from conveyor.api.health import router as health_router
from conveyor.api.jobs import router as jobs_router
from conveyor.api.limits import BodyLimitMiddleware
from conveyor.api.metrics import router as metrics_router
from conveyor.api.queues import router as queues_router
from conveyor.api.readiness import router as readiness_router
from conveyor.api.requestid import RequestIdMiddleware
from conveyor.api.schedules import router as schedules_router
from conveyor.api.tasks import router as tasks_router
from conveyor.api.workers import router as workers_router
from conveyor.api.workflows import router as workflows_router
from conveyor.keys import Authenticator
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.submit import Submitter
from conveyor.task import TaskRegistry, registry
from conveyor.workflows import WorkflowInvalid

__all__ = ["create_api"]

DESCRIPTION = """Submit background jobs and follow them.

Authenticate with `Authorization: Bearer <key>`. Every error has the body
`{"error": {"code": "...", "message": "...", "details": ...}}`.
"""


#: what the middleware, JSON parsing and validation can answer on any /api/v1 route
BODY_ERRORS = (400, 413, 422)


def _version() -> str:
    try:
        return version("conveyor")
    except PackageNotFoundError:
        return "0.0.0"


def create_api(
    settings: Settings,
    store: JobStore,
    submitter: Submitter,
    tasks: TaskRegistry = registry,
    authenticator: Authenticator | None = None,
) -> FastAPI:
    app = FastAPI(
        title="conveyor",
        version=_version(),
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        lifespan=prune_events,
    )
    app.state.conveyor = ApiContext(
        settings=settings,
        store=store,
        submitter=submitter,
        tasks=tasks,
        authenticator=authenticator or Authenticator(settings, store),
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestIdMiddleware)  # added last = outermost
    for router in (health_router, readiness_router, metrics_router):
        app.include_router(router)
    for router in (
        jobs_router,
        tasks_router,
        events_router,
        workers_router,
        schedules_router,
        cancel_router,
        dead_letters_router,
        batch_router,
        workflows_router,
        queues_router,
        fanout_router,
    ):
        # the body limit, JSON parsing and validation answer these on every route alike
        app.include_router(router, responses=error_responses(*BODY_ERRORS))
    app.add_exception_handler(WorkflowInvalid, handle_error)
    return app
