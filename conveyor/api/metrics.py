"""``GET /metrics`` (Prometheus text) and ``GET /api/v1/metrics/tasks`` (the seed's dict).

``/metrics`` needs an API key with the ``read`` scope, unless
``CONVEYOR_METRICS_PUBLIC=true`` (for a scraper that cannot send a bearer token;
keep the port private then).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from conveyor.api.auth import Credentials, authorize, require
from conveyor.api.context import Context
from conveyor.api.errors import error_responses
from conveyor.metrics import metrics_registry, task_metrics_from

router = APIRouter(tags=["metrics"])


def metrics_access(context: Context, credentials: Credentials) -> None:
    """``read`` scope, unless metrics are public."""
    if not context.settings.metrics_public:
        authorize(context.authenticator, credentials, "read")


@router.get(
    "/metrics",
    dependencies=[Depends(metrics_access)],
    responses=error_responses(401, 403),
    summary="Prometheus metrics",
    response_class=Response,
)
def prometheus_metrics(context: Context) -> Response:
    """Every conveyor series in the Prometheus text format, computed at scrape time."""
    registry = metrics_registry(context.settings, context.store, context.submitter.app)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/api/v1/metrics/tasks",
    dependencies=[Depends(require("read"))],
    responses=error_responses(401, 403, 503),
    summary="Task metrics",
)
def task_metrics(context: Context) -> dict[str, Any]:
    """`total_executed`, `total_failed`, `total_retried` and `by_task`, from the job store."""
    return task_metrics_from(context.store.job_counts())
