"""``POST /api/v1/jobs/batch``: up to 1,000 jobs in one request, each accepted or refused."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from conveyor.api.auth import require
from conveyor.api.context import Context
from conveyor.api.errors import ErrorDetail, error_responses, field_errors, problem_for
from conveyor.api.schemas import JobOut, SubmitBody
from conveyor.errors import ConveyorError
from conveyor.jobs import Job
from conveyor.submit import SubmitRequest

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

#: most jobs one batch request may hold
MAX_BATCH = 1000


class BatchBody(BaseModel):
    """Jobs to submit; each item has the fields of a single submit (`task`, `args`, ...)."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Up to 1,000 submit bodies, validated one by one.",
    )


class BatchItem(BaseModel):
    """One item of the batch: ``accepted`` with its job, or refused with the error."""

    index: int
    accepted: bool
    job: JobOut | None = None
    error: ErrorDetail | None = None


class BatchOut(BaseModel):
    items: list[BatchItem]
    accepted: int
    refused: int


def _refused(index: int, exc: Exception) -> BatchItem:
    problem = problem_for(exc)
    detail = ErrorDetail(code=problem.code, message=problem.message, details=problem.details)
    return BatchItem(index=index, accepted=False, error=detail)


def _parse(raw: list[dict[str, Any]]) -> tuple[list[SubmitRequest], dict[int, BatchItem]]:
    """Requests of the well-formed items, and the refusals of the malformed ones (by index)."""
    requests: list[SubmitRequest] = []
    refused: dict[int, BatchItem] = {}
    for index, item in enumerate(raw):
        try:
            requests.append(SubmitBody.model_validate(item).to_request())
        except ValidationError as exc:
            detail = ErrorDetail(
                code="invalid_request",
                message="the job is invalid",
                details=field_errors(exc.errors(include_input=False, include_url=False)),
            )
            refused[index] = BatchItem(index=index, accepted=False, error=detail)
    return requests, refused


#: JobOut's fields in its order, each read off the Job under its own name (those that are
#: converted below read a placeholder: attempt_count is the Job's attempts, callbacks none)
_JOB_OUT_FIELDS = tuple(JobOut.model_fields)
_SOURCE = {"attempt_count": "attempts", "callbacks": "id"}
_read_fields = attrgetter(*(_SOURCE.get(name, name) for name in _JOB_OUT_FIELDS))


def accepted_item(index: int, job: Job) -> dict[str, Any]:
    """The item of an accepted job as plain data: what ``BatchItem(index, True,
    JobOut.from_job(job))`` serialises to (tests/unit/test_submit_paths.py checks it),
    without a model per job (a thousand of them were a tenth of a batch's time)."""
    out = dict(zip(_JOB_OUT_FIELDS, _read_fields(job), strict=True))
    out["args"] = list(job.args)
    out["kwargs"] = dict(job.kwargs)
    if job.retry is not None:
        out["retry"] = dict(job.retry)
    if job.progress is not None:
        out["progress"] = dict(job.progress)
    out["attempts"] = []
    out["callbacks"] = []
    return {"index": index, "accepted": True, "job": out, "error": None}


def _merge(
    total: int, refused: dict[int, BatchItem], outcomes: list[Job | ConveyorError]
) -> dict[str, Any]:
    """The BatchOut body as plain data (see ``accepted_item``)."""
    pending = iter(outcomes)
    items: list[dict[str, Any]] = []
    accepted = 0
    for index in range(total):
        if index in refused:
            items.append(refused[index].model_dump())
            continue
        outcome = next(pending)
        if isinstance(outcome, Job):
            items.append(accepted_item(index, outcome))
            accepted += 1
        else:
            items.append(_refused(index, outcome).model_dump())
    return {"items": items, "accepted": accepted, "refused": total - accepted}


@router.post(
    "/batch",
    response_model=BatchOut,
    dependencies=[Depends(require("write"))],
    responses=error_responses(400, 401, 403, 413, 422, 503),
    summary="Submit many jobs",
)
async def submit_batch(body: BatchBody, context: Context) -> Response:
    """Submit up to 1,000 jobs. Each is validated on its own: the response lists, in
    order, whether it was accepted (with the job) or refused (with the error, in the
    standard error format). The accepted ones are written to the store in one transaction
    and published over one broker connection. More than 1,000 jobs: 422."""
    requests, refused = _parse(body.jobs)
    outcomes = await run_in_threadpool(context.submitter.submit_many, requests)
    # serialised here, as FastAPI would serialise a BatchOut (response_model documents it)
    content = to_json(_merge(len(body.jobs), refused, outcomes))
    return Response(content=content, media_type="application/json")
