"""``POST /api/v1/jobs/fanout``: one job per item, at a global rate, outside quiet hours."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from conveyor.api.auth import require
from conveyor.api.context import Context
from conveyor.api.errors import ApiError, error_responses
from conveyor.fanout import expand

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

MAX_ITEMS = 10_000


class FanoutBody(BaseModel):
    """Expand ``items`` (each the keyword arguments of one job) into jobs of ``task``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "task": "reminders.send",
                    "items": [{"user_id": 1, "timezone": "Europe/Prague"}, {"user_id": 2}],
                    "rate": "1/2s",
                    "quiet_hours": "22:00-08:00",
                }
            ]
        },
    )

    task: str = Field(min_length=1, max_length=200, description="Registered task name.")
    items: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description="One job per item: its keyword arguments. An item's 'timezone' (IANA "
        "name) places quiet hours; it is passed on only if the task takes it.",
    )
    rate: str | None = Field(
        None,
        max_length=64,
        description="Global pace, e.g. '1/2s' (one job every 2 s) or '30/m': jobs are due "
        "that far apart and carry it as their rate limit.",
    )
    quiet_hours: str | None = Field(
        None,
        description="'HH:MM-HH:MM' in each item's time zone; a job due inside is delayed to "
        "the end. Items without 'timezone' are not moved.",
    )
    queue: str | None = Field(None, description="Override the task's queue.")
    priority: int | None = Field(None, ge=0, le=9, description="0 (lowest) to 9 (highest).")


class FanoutOut(BaseModel):
    count: int
    job_ids: list[str]
    first_due: datetime | None
    last_due: datetime | None


@router.post(
    "/fanout",
    status_code=201,
    dependencies=[Depends(require("write"))],
    responses=error_responses(400, 401, 403, 404, 413, 422, 503),
    summary="Fan a list out into jobs",
)
def submit_fanout(body: FanoutBody, context: Context) -> FanoutOut:
    """Validate every item against the task's schema, then submit one job per item.

    Nothing is submitted when any item (or the rate, quiet hours, a time zone) is invalid.
    """
    try:
        result = expand(
            context.submitter,
            body.task,
            body.items,
            rate=body.rate,
            quiet_hours=body.quiet_hours,
            queue=body.queue,
            priority=body.priority,
            batch_size=len(body.items),  # the whole list is validated before anything is sent
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_fanout", str(exc), {}) from None
    return FanoutOut(
        count=result.count,
        job_ids=result.job_ids,
        first_due=result.first_due,
        last_due=result.last_due,
    )
