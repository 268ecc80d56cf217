"""``/api/v1/dead-letters``: list, replay (one or all matching a filter), delete."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from conveyor.api.auth import require
from conveyor.api.context import Context
from conveyor.api.errors import ApiError, error_responses
from conveyor.api.jobs import job_out
from conveyor.api.schemas import AttemptOut, JobOut
from conveyor.deadletters import DeadLetterError, replay, replay_matching
from conveyor.store.reliability import DeadLetter, DeadLetterFilter, decode_dl_cursor

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_BULK_REPLAY = 1000


class DeadLetterOut(BaseModel):
    """A dead job: everything needed to run it again, and its attempts."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The dead job's id (also the entry's id).")
    task: str
    queue: str
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int | None
    retry: dict[str, Any] | None
    attempt_count: int
    error: str | None
    error_type: str | None
    traceback: str | None
    reason: str | None = Field(description="Why it died: exhausted, permanent, time_limit, ...")
    dead_at: datetime
    replayed_at: datetime | None
    replayed_job_id: str | None
    attempts: list[AttemptOut]


class DeadLetterList(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kwargs: dict[str, Any] | None = Field(
        None, description="Corrected keyword arguments, merged over the original ones."
    )


class BulkReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str | None = None
    queue: str | None = None
    error_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(MAX_BULK_REPLAY, ge=1, le=MAX_BULK_REPLAY)


class Replayed(BaseModel):
    dead_letter_id: str
    job_id: str


class ReplayFailed(BaseModel):
    dead_letter_id: str
    error: str


class BulkReplayOut(BaseModel):
    replayed: list[Replayed]
    failed: list[ReplayFailed]


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _out(context: Context, entries: list[DeadLetter]) -> list[DeadLetterOut]:
    attempts = context.store.list_attempts([e.job_id for e in entries])
    return [
        DeadLetterOut(
            id=e.job_id,
            task=e.task,
            queue=e.queue,
            args=list(e.args),
            kwargs=dict(e.kwargs),
            priority=e.priority,
            retry=dict(e.retry) if e.retry is not None else None,
            attempt_count=e.attempts,
            error=e.error,
            error_type=e.error_type,
            traceback=e.traceback,
            reason=e.reason,
            dead_at=e.dead_at,
            replayed_at=e.replayed_at,
            replayed_job_id=e.replayed_job_id,
            attempts=[AttemptOut.from_attempt(a) for a in attempts[e.job_id]],
        )
        for e in entries
    ]


def _checked_cursor(cursor: str | None) -> str | None:
    if cursor is not None:
        try:
            decode_dl_cursor(cursor)
        except ValueError:
            raise ApiError(422, "invalid_cursor", "malformed cursor", {"cursor": cursor}) from None
    return cursor


def _raise(exc: DeadLetterError) -> None:
    status = 404 if exc.code == "dead_letter_not_found" else 409
    raise ApiError(status, exc.code, exc.message, {"replayed_job_id": _replayed(exc)}) from None


def _replayed(exc: DeadLetterError) -> str | None:
    return exc.entry.replayed_job_id if exc.entry is not None else None


@router.get(
    "",
    dependencies=[Depends(require("read"))],
    responses=error_responses(401, 403, 422, 503),
    summary="List dead letters",
)
def list_dead_letters(
    context: Context,
    *,
    task: str | None = None,
    queue: str | None = None,
    error_type: str | None = None,
    since: Annotated[datetime | None, Query(description="Died at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Died before (ISO 8601).")] = None,
    replayed: Annotated[bool | None, Query(description="Only (not) replayed entries.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> DeadLetterList:
    """Dead jobs, newest first."""
    flt = DeadLetterFilter(task, queue, error_type, _aware(since), _aware(until), replayed)
    page = context.store.list_dead_letters(flt, limit, _checked_cursor(cursor))
    return DeadLetterList(items=_out(context, page.items), next_cursor=page.next_cursor)


@router.get(
    "/{dead_letter_id}",
    dependencies=[Depends(require("read"))],
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Get a dead letter",
)
def get_dead_letter(dead_letter_id: str, context: Context) -> DeadLetterOut:
    entry = context.store.get_dead_letter(dead_letter_id)
    if entry is None:
        raise ApiError(404, "dead_letter_not_found", f"no dead letter {dead_letter_id!r}")
    return _out(context, [entry])[0]


@router.post(
    "/replay",
    dependencies=[Depends(require("write"))],
    responses=error_responses(401, 403, 422, 503),
    summary="Replay every dead letter matching a filter",
)
def replay_all(context: Context, body: BulkReplayBody) -> BulkReplayOut:
    """Replays (at most ``limit``) entries not replayed yet; each becomes a new job."""
    flt = DeadLetterFilter(
        body.task, body.queue, body.error_type, _aware(body.since), _aware(body.until)
    )
    result = replay_matching(context.store, context.submitter, flt, body.limit)
    return BulkReplayOut(
        replayed=[Replayed(dead_letter_id=d, job_id=j) for d, j in result.replayed],
        failed=[ReplayFailed(dead_letter_id=d, error=e) for d, e in result.failed],
    )


@router.post(
    "/{dead_letter_id}/replay",
    status_code=201,
    dependencies=[Depends(require("write"))],
    responses=error_responses(401, 403, 404, 409, 422, 503),
    summary="Replay a dead letter",
)
def replay_one(
    dead_letter_id: str, context: Context, body: Annotated[ReplayBody | None, Body()] = None
) -> JobOut:
    """Submit the dead job again as a new job (``replay_of`` = the dead job).

    Corrected ``kwargs`` are merged over the original ones and validated like a
    submit (422). An entry can be replayed once (409 afterwards).
    """
    kwargs = body.kwargs if body is not None else None
    try:
        job = replay(context.store, context.submitter, dead_letter_id, kwargs)
    except DeadLetterError as exc:
        _raise(exc)
        raise
    return job_out(context, job)


@router.delete(
    "/{dead_letter_id}",
    status_code=204,
    dependencies=[Depends(require("write"))],
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Delete a dead letter",
)
def delete_dead_letter(dead_letter_id: str, context: Context) -> Response:
    if not context.store.delete_dead_letter(dead_letter_id):
        raise ApiError(404, "dead_letter_not_found", f"no dead letter {dead_letter_id!r}")
    return Response(status_code=204)
