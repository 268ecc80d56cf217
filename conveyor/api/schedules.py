"""``/api/v1/schedules``: periodic schedules, edited live (the scheduler re-reads them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conveyor.api.auth import require
from conveyor.api.context import ApiContext, Context
from conveyor.api.errors import ApiError, ErrorBody, error_responses, field_errors
from conveyor.api.schemas import JobOut
from conveyor.cron import CronExpression, zone
from conveyor.schedule_manager import ScheduleExists, ScheduleManager, ScheduleNotFound
from conveyor.schedules import (
    MIN_INTERVAL,
    MissedPolicy,
    Origin,
    Schedule,
    ScheduleOptions,
    ScheduleSpec,
    check_name,
)

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])

_EXTRA = {
    404: {"model": ErrorBody, "description": "No such schedule (`schedule_not_found`) or task."},
    409: {"model": ErrorBody, "description": "A schedule of this name exists (`schedule_exists`)."},
    422: {
        "model": ErrorBody,
        "description": "Invalid schedule (`invalid_request`, `invalid_schedule`): a bad cron "
        "expression, time zone or interval, not exactly one of cron/interval/at, or task "
        "arguments that do not validate (`invalid_arguments`); `details` says which field.",
    },
}


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    known = error_responses(*(s for s in statuses if s not in _EXTRA))
    known.update({s: _EXTRA[s] for s in statuses if s in _EXTRA})
    return known


class ScheduleIn(ScheduleSpec):
    """A new schedule: a unique name plus its definition."""

    name: str = Field(description="Unique name (letters, digits, `. _ - :`).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)


class SchedulePatch(BaseModel):
    """Any fields of a schedule; a new cron, interval or at replaces the old timing."""

    model_config = ConfigDict(extra="forbid")

    task: str | None = Field(None, min_length=1, max_length=200)
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    cron: str | None = None
    interval: float | None = Field(None, ge=MIN_INTERVAL, allow_inf_nan=False)
    at: datetime | None = None
    timezone: str | None = None
    enabled: bool | None = None
    options: ScheduleOptions | None = None
    missed: MissedPolicy | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else CronExpression.parse(value).expression

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value


class ScheduleOut(BaseModel):
    """A stored schedule with its run bookkeeping."""

    model_config = ConfigDict(extra="forbid")

    name: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    cron: str | None
    interval: float | None
    at: datetime | None
    timezone: str
    enabled: bool
    options: ScheduleOptions
    missed: MissedPolicy
    origin: Origin = Field(description="Where it was declared: `code`, `config` or `api`.")
    version: int = Field(description="Grows with every change of the schedule.")
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_schedule(cls, schedule: Schedule) -> ScheduleOut:
        return cls(
            name=schedule.name,
            task=schedule.task,
            args=list(schedule.args),
            kwargs=dict(schedule.kwargs),
            cron=schedule.cron,
            interval=schedule.interval,
            at=schedule.at,
            timezone=schedule.timezone,
            enabled=schedule.enabled,
            options=ScheduleOptions(queue=schedule.queue, priority=schedule.priority),
            missed=schedule.missed,
            origin=schedule.origin,
            version=schedule.version,
            next_run_at=schedule.next_run_at,
            last_run_at=schedule.last_run_at,
            last_job_id=schedule.last_job_id,
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
        )


class ScheduleList(BaseModel):
    items: list[ScheduleOut]


def _manager(context: ApiContext) -> ScheduleManager:
    return ScheduleManager(context.store, context.submitter)


@contextmanager
def _problems() -> Iterator[None]:
    """Schedule errors as API errors (task and argument errors have their own handlers)."""
    try:
        yield
    except ScheduleNotFound as exc:
        raise ApiError(404, "schedule_not_found", str(exc), {"name": exc.name}) from None
    except ScheduleExists as exc:
        raise ApiError(409, "schedule_exists", str(exc), {"name": exc.name}) from None
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_url=False))
        message = "; ".join(e["msg"].removeprefix("Value error, ") for e in errors)
        raise ApiError(422, "invalid_schedule", f"invalid schedule: {message}", errors) from None


@router.get(
    "",
    dependencies=[Depends(require("read"))],
    responses=_responses(401, 403, 422, 503),
    summary="List schedules",
)
def list_schedules(context: Context) -> ScheduleList:
    return ScheduleList(items=[ScheduleOut.from_schedule(s) for s in _manager(context).list()])


@router.get(
    "/{name}",
    dependencies=[Depends(require("read"))],
    responses=_responses(401, 403, 404, 422, 503),
    summary="Get a schedule",
)
def get_schedule(name: str, context: Context) -> ScheduleOut:
    with _problems():
        return ScheduleOut.from_schedule(_manager(context).get(name))


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(require("write"))],
    responses=_responses(401, 403, 404, 409, 422, 503),
    summary="Create a schedule",
)
def create_schedule(body: ScheduleIn, context: Context) -> ScheduleOut:
    """Arguments, queue and priority are validated like a submit; nothing is stored if not."""
    spec = ScheduleSpec.model_validate(body.model_dump(exclude={"name"}))
    with _problems():
        return ScheduleOut.from_schedule(_manager(context).create(body.name, spec))


@router.patch(
    "/{name}",
    dependencies=[Depends(require("write"))],
    responses=_responses(401, 403, 404, 422, 503),
    summary="Change a schedule",
)
def update_schedule(name: str, body: SchedulePatch, context: Context) -> ScheduleOut:
    """Takes effect within a second: the scheduler re-reads schedules on every pass."""
    changes = body.model_dump(exclude_unset=True)
    with _problems():
        return ScheduleOut.from_schedule(_manager(context).update(name, changes))


@router.delete(
    "/{name}",
    status_code=204,
    dependencies=[Depends(require("write"))],
    responses=_responses(401, 403, 404, 422, 503),
    summary="Delete a schedule",
)
def delete_schedule(name: str, context: Context) -> Response:
    with _problems():
        _manager(context).delete(name)
    return Response(status_code=204)


@router.post(
    "/{name}/run",
    status_code=201,
    dependencies=[Depends(require("write"))],
    responses=_responses(401, 403, 404, 422, 503),
    summary="Run a schedule now",
)
def run_schedule(name: str, context: Context) -> JobOut:
    """Submit the schedule's job now; its next periodic run is unchanged."""
    with _problems():
        return JobOut.from_job(_manager(context).run_now(name))


@router.post(
    "/{name}/pause",
    dependencies=[Depends(require("write"))],
    responses=_responses(401, 403, 404, 422, 503),
    summary="Pause a schedule",
)
def pause_schedule(name: str, context: Context) -> ScheduleOut:
    with _problems():
        return ScheduleOut.from_schedule(_manager(context).pause(name))


@router.post(
    "/{name}/resume",
    dependencies=[Depends(require("write"))],
    responses=_responses(401, 403, 404, 422, 503),
    summary="Resume a schedule",
)
def resume_schedule(name: str, context: Context) -> ScheduleOut:
    """The next run is the next due time from now (missed runs are not caught up)."""
    with _problems():
        return ScheduleOut.from_schedule(_manager(context).resume(name))
