"""``POST /api/v1/jobs/batch``: up to 1,000 jobs in one request, each accepted or refused."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, ValidationError
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


#: JobOut's fields read straight off the Job (the others are converted, as in from_job)
_PLAIN_FIELDS = tuple(
    name
    for name in JobOut.model_fields
    if name not in {"args", "kwargs", "retry", "progress", "attempts", "attempt_count", "callbacks"}
)


def _accepted(index: int, job: Job) -> BatchItem:
    """The item of an accepted job: ``JobOut.from_job(job)`` without validating again what
    the submitter has just built (tests/unit/test_submit_paths.py checks both serialise
    alike); a thousand validations were a tenth of a batch."""
    values = {name: getattr(job, name) for name in _PLAIN_FIELDS}
    out = JobOut.model_construct(
        **values,
        args=list(job.args),
        kwargs=dict(job.kwargs),
        retry=dict(job.retry) if job.retry is not None else None,
        progress=dict(job.progress) if job.progress is not None else None,
        attempts=[],
        attempt_count=job.attempts,
        callbacks=[],
    )
    return BatchItem.model_construct(index=index, accepted=True, job=out, error=None)


def _merge(
    total: int, refused: dict[int, BatchItem], outcomes: list[Job | ConveyorError]
) -> BatchOut:
    pending = iter(outcomes)
    items: list[BatchItem] = []
    for index in range(total):
        if index in refused:
            items.append(refused[index])
            continue
        outcome = next(pending)
        if isinstance(outcome, Job):
            items.append(_accepted(index, outcome))
        else:
            items.append(_refused(index, outcome))
    accepted = sum(item.accepted for item in items)
    return BatchOut.model_construct(items=items, accepted=accepted, refused=len(items) - accepted)


@router.post(
    "/batch",
    dependencies=[Depends(require("write"))],
    responses=error_responses(400, 401, 403, 413, 422, 503),
    summary="Submit many jobs",
)
async def submit_batch(body: BatchBody, context: Context) -> BatchOut:
    """Submit up to 1,000 jobs. Each is validated on its own: the response lists, in
    order, whether it was accepted (with the job) or refused (with the error, in the
    standard error format). The accepted ones are written to the store in one transaction
    and published over one broker connection. More than 1,000 jobs: 422."""
    requests, refused = _parse(body.jobs)
    outcomes = await run_in_threadpool(context.submitter.submit_many, requests)
    return _merge(len(body.jobs), refused, outcomes)
