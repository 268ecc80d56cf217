"""``/api/v1/jobs``: submit a job, read one, list them newest first."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from conveyor.api.auth import require
from conveyor.api.context import ApiContext, Context
from conveyor.api.errors import ApiError, error_responses
from conveyor.api.schemas import JobList, JobOut, SubmitBody
from conveyor.jobs import Job, JobState
from conveyor.queues import supports_priorities
from conveyor.store.base import JobFilter, decode_cursor

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

DEFAULT_PAGE_SIZE = 50
#: said on a submit whose priority the broker cannot honour (see GET /api/v1/queues)
PRIORITY_WARNING_HEADER = "X-Conveyor-Warning"
PRIORITY_IGNORED = "priority-ignored: the embedded filesystem broker is FIFO"
MAX_PAGE_SIZE = 500
#: longest long-poll (``GET /api/v1/jobs/{id}?wait=``) and how often it re-reads the store
MAX_WAIT_SECONDS = 60
WAIT_POLL_SECONDS = 0.15


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(require("write"))],
    responses={
        200: {"model": JobOut, "description": "The job an idempotency/unique key found."},
        **error_responses(400, 401, 403, 404, 413, 422, 503),
    },
    summary="Submit a job",
)
def submit_job(body: SubmitBody, context: Context, response: Response) -> JobOut:
    """Validate the arguments against the task's schema, record the job and enqueue it.

    Nothing is recorded or enqueued when the request is refused. With an
    ``idempotency_key`` already used (or a unique task's job already active) the
    existing job is returned with 200 and nothing is enqueued. On a broker that
    ignores priorities (the embedded filesystem broker) a job with a priority gets
    the response header ``X-Conveyor-Warning: priority-ignored: ...``.
    """
    # a plain def: FastAPI runs it in the threadpool, as submitting blocks on I/O
    job, created = context.submitter.submit_once(body.to_request())
    if not created:
        response.status_code = 200
    if job.priority is not None and not supports_priorities(context.settings):
        response.headers[PRIORITY_WARNING_HEADER] = PRIORITY_IGNORED
    if created and not context.submitter.inline:
        # the job as submitted: no attempt and no callback delivery yet, nothing to read
        return JobOut.from_job(job)
    return job_out(context, job)


def job_out(context: ApiContext, job: Job) -> JobOut:
    """The full view of one job: with its attempts and completion-callback deliveries."""
    attempts = context.store.list_attempts([job.id])[job.id]
    return JobOut.from_job(job, attempts, context.store.list_callback_deliveries(job.id))


@router.get(
    "/{job_id}",
    dependencies=[Depends(require("read"))],
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Get a job",
)
async def get_job(
    job_id: str,
    context: Context,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            allow_inf_nan=False,
            description="Long-poll: wait up to this many seconds (max 60) for the job to "
            "reach a final state; the job is returned as it is when the wait ends.",
        ),
    ] = 0,
) -> JobOut:
    job = await run_in_threadpool(context.store.get_job, job_id)
    if job is None:
        raise ApiError(404, "job_not_found", f"no job {job_id!r}", {"job_id": job_id})
    deadline = time.monotonic() + wait
    while not job.state.is_final and time.monotonic() < deadline:
        await asyncio.sleep(min(WAIT_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
        job = await run_in_threadpool(context.store.get_job, job_id) or job
    return await run_in_threadpool(job_out, context, job)


def _checked_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        created_at, _ = decode_cursor(cursor)
    except ValueError:
        created_at = None
    if created_at is None or created_at.tzinfo is None:
        raise ApiError(422, "invalid_cursor", "malformed cursor", {"cursor": cursor})
    return cursor


@router.get(
    "",
    dependencies=[Depends(require("read"))],
    responses=error_responses(401, 403, 422, 503),
    summary="List jobs",
)
def list_jobs(
    context: Context,
    *,
    state: JobState | None = None,
    task: str | None = None,
    queue: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> JobList:
    """Jobs newest first, optionally filtered by state, task and queue."""
    page = context.store.list_jobs(
        JobFilter(state=state, task=task, queue=queue), limit, _checked_cursor(cursor)
    )
    attempts = context.store.list_attempts([job.id for job in page.items])
    items = [JobOut.from_job(job, attempts[job.id]) for job in page.items]
    return JobList(items=items, next_cursor=page.next_cursor)
