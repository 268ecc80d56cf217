"""``GET /api/v1/workers``: the workers online now, asked through Celery's inspect."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from conveyor.api.auth import require
from conveyor.api.context import Context
from conveyor.api.errors import ApiError, error_responses
from conveyor.inspection import BROKER_ERRORS, inspect_workers

router = APIRouter(prefix="/api/v1/workers", tags=["workers"])


class WorkerOut(BaseModel):
    name: str
    queues: list[str]
    concurrency: int | None
    active_job_ids: list[str]
    last_heartbeat: datetime
    pid: int | None
    processed: dict[str, int]


class WorkerList(BaseModel):
    items: list[WorkerOut]


@router.get(
    "",
    dependencies=[Depends(require("read"))],
    responses=error_responses(401, 403, 503),
    summary="List workers",
)
async def list_workers(context: Context) -> WorkerList:
    """Workers answering within `CONVEYOR_INSPECT_TIMEOUT`: queues, pool size, active jobs.

    `last_heartbeat` is when the worker answered this request.
    """
    try:
        found = await run_in_threadpool(
            inspect_workers, context.submitter.app, context.settings.inspect_timeout
        )
    except BROKER_ERRORS as exc:
        raise ApiError(503, "broker_unavailable", f"cannot ask the workers: {exc}") from exc
    return WorkerList(items=[WorkerOut.model_validate(w.to_dict()) for w in found])
