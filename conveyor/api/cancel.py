"""``POST /api/v1/jobs/{id}/cancel``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from conveyor.api.auth import require
from conveyor.api.context import Context
from conveyor.api.errors import ApiError, error_responses
from conveyor.api.jobs import job_out
from conveyor.api.schemas import JobOut
from conveyor.cancellation import CancelError, cancel_job

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    terminate: bool = Field(
        False, description="Also cancel a running job by killing the process that runs it."
    )


@router.post(
    "/{job_id}/cancel",
    dependencies=[Depends(require("write"))],
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Cancel a job",
)
def cancel(
    job_id: str, context: Context, body: Annotated[CancelBody | None, Body()] = None
) -> JobOut:
    """A SCHEDULED or QUEUED job never runs, even if workers restart in between.

    A running (STARTED) job is only cancelled with ``{"terminate": true}``: its
    process is killed. A finished job cannot be cancelled (409).
    """
    terminate = body.terminate if body is not None else False
    app = context.submitter.app
    try:
        job = cancel_job(context.store, app, job_id, terminate=terminate)
    except CancelError as exc:
        status = 404 if exc.code == "job_not_found" else 409
        details = {"job_id": job_id, "state": exc.job.state.value if exc.job else None}
        raise ApiError(status, exc.code, exc.message, details) from None
    return job_out(context, job)
