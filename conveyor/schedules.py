"""Periodic schedules: what they are, how they are declared, and when they are next due.

A schedule runs one task with fixed arguments on a crontab (in an IANA time
zone), a fixed interval, or once at a time. Schedules are stored in the job
store; they come from code (``@task(schedule=crontab(...))``), from the
``schedules`` section of ``conveyor.toml`` (``origin`` = ``code``/``config``,
synced when a scheduler starts) or from the API/CLI (``origin`` = ``api``).

Everything here is pure: no store, no broker. :mod:`conveyor.scheduler` runs them.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from celery.schedules import crontab as celery_crontab
from celery.schedules import schedule as celery_schedule
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from conveyor.cron import CronExpression, zone
from conveyor.jobs import json_ready_fields, utcnow

MissedPolicy = Literal["skip", "run_once"]
Origin = Literal["code", "config", "api"]
TIMING_FIELDS = ("cron", "interval", "at")
#: Shortest interval: the scheduler ticks at most once a second.
MIN_INTERVAL = 1.0
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"invalid schedule name {name!r}: 1-200 of letters, digits and . _ - :")
    return name


class ScheduleOptions(BaseModel):
    """How the schedule's jobs are submitted."""

    model_config = ConfigDict(extra="forbid")

    queue: str | None = Field(None, description="Queue instead of the task's own.")
    priority: int | None = Field(None, ge=0, le=9, description="0 (lowest) to 9 (highest).")


class ScheduleSpec(BaseModel):
    """A schedule's definition, as written in ``conveyor.toml`` or sent to the API.

    Exactly one of ``cron``, ``interval`` and ``at`` is given.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"task": "reports.daily", "cron": "0 8 * * *", "timezone": "Europe/Prague"},
                {"task": "health.check", "interval": 300, "options": {"queue": "maintenance"}},
            ]
        },
    )

    task: str = Field(min_length=1, max_length=200, description="Registered task name.")
    args: list[Any] = Field(default_factory=list, description="Positional arguments.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
    cron: str | None = Field(None, description="Cron expression `m h dom mon dow`.")
    interval: float | None = Field(
        None, ge=MIN_INTERVAL, allow_inf_nan=False, description="Every this many seconds."
    )
    at: datetime | None = Field(None, description="Once, at this time (ISO 8601; UTC if naive).")
    timezone: str = Field("UTC", description="IANA time zone of `cron`.")
    enabled: bool = Field(True, description="Paused schedules submit nothing.")
    options: ScheduleOptions = Field(default_factory=ScheduleOptions)
    missed: MissedPolicy = Field(
        "skip",
        description="A run missed while no scheduler was running: `skip` it or `run_once`.",
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else CronExpression.parse(value).expression

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("at")
    @classmethod
    def _at(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleSpec:
        given = [name for name in TIMING_FIELDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of cron, interval, at"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


@dataclass(frozen=True, slots=True)
class Schedule:
    """One stored schedule. Never mutated: use ``evolve``.

    ``version`` grows with every change of the definition or the enabled flag, so a
    scheduler can tell that its view is stale.
    """

    name: str
    task: str
    cron: str | None = None
    interval: float | None = None
    at: datetime | None = None
    timezone: str = "UTC"
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    enabled: bool = True
    missed: MissedPolicy = "skip"
    origin: Origin = "api"
    version: int = 1
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    last_job_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)

    # -- building ------------------------------------------------------------------
    @classmethod
    def from_spec(
        cls, name: str, spec: ScheduleSpec, origin: Origin, now: datetime | None = None
    ) -> Schedule:
        """A new schedule from its definition, with its first due time computed."""
        at = now or utcnow()
        fresh = cls(name=check_name(name), task=spec.task, origin=origin, created_at=at)
        return fresh.redefine(spec, at)

    def redefine(self, spec: ScheduleSpec, now: datetime) -> Schedule:
        """This schedule with a new definition; the next run is recomputed from ``now``."""
        changed = self.evolve(
            task=spec.task,
            cron=spec.cron,
            interval=spec.interval,
            at=spec.at,
            timezone=spec.timezone,
            args=tuple(spec.args),
            kwargs=dict(spec.kwargs),
            queue=spec.options.queue,
            priority=spec.options.priority,
            enabled=spec.enabled,
            missed=spec.missed,
            updated_at=now,
        )
        return changed.evolve(next_run_at=changed.first_due(now) if changed.enabled else None)

    def spec(self) -> ScheduleSpec:
        """The definition of this schedule (what the API and TOML accept)."""
        return ScheduleSpec(
            task=self.task,
            args=list(self.args),
            kwargs=dict(self.kwargs),
            cron=self.cron,
            interval=self.interval,
            at=self.at,
            timezone=self.timezone,
            enabled=self.enabled,
            options=ScheduleOptions(queue=self.queue, priority=self.priority),
            missed=self.missed,
        )

    def evolve(self, **changes: Any) -> Schedule:
        return dataclasses.replace(self, **changes)

    def definition(self) -> tuple[Any, ...]:
        """What a declaration controls (compared when declarations are synced)."""
        return (
            self.task,
            self.cron,
            self.interval,
            self.at,
            self.timezone,
            list(self.args),
            dict(self.kwargs),
            self.queue,
            self.priority,
            self.missed,
        )

    @property
    def kind(self) -> Literal["cron", "interval", "at"]:
        if self.cron is not None:
            return "cron"
        return "interval" if self.interval is not None else "at"

    # -- timing --------------------------------------------------------------------
    def first_due(self, now: datetime) -> datetime | None:
        """When a newly defined, edited or resumed schedule is next due (never before now)."""
        if self.cron is not None:
            return CronExpression.parse(self.cron).next_after(now, self.timezone)
        if self.interval is not None:
            step = timedelta(seconds=self.interval)
            if self.last_run_at is not None and self.last_run_at + step > now:
                return self.last_run_at + step  # keep the cadence of the previous run
            return now + step
        if self.at is not None and (self.last_run_at is None or self.last_run_at < self.at):
            return max(self.at, now)
        return None

    def advance(self, due: datetime, now: datetime) -> datetime | None:
        """The next due time after the run due at ``due`` (always after ``now``; no bursts)."""
        if self.cron is not None:
            return CronExpression.parse(self.cron).next_after(max(due, now), self.timezone)
        if self.interval is not None:
            step = self.interval
            periods = max(1, math.floor((now - due).total_seconds() / step) + 1)
            return due + timedelta(seconds=step * periods)
        return None

    def to_dict(self) -> dict[str, Any]:
        return json_ready_fields(self)


# -- declaring schedules in code ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Cron:
    """``@task(schedule=Cron("30 2 * * *", timezone="Europe/Prague"))``."""

    expression: str
    timezone: str = "UTC"
    missed: MissedPolicy = "skip"


@dataclass(frozen=True, slots=True)
class Every:
    """``@task(schedule=Every(300))``: every this many seconds."""

    seconds: float
    missed: MissedPolicy = "skip"


@dataclass(frozen=True, slots=True)
class At:
    """``@task(schedule=At(datetime(2030, 1, 1, tzinfo=UTC)))``: once."""

    when: datetime
    missed: MissedPolicy = "skip"


def _cron_field(value: Any) -> str:
    if isinstance(value, set | frozenset | list | tuple | range):
        return ",".join(str(v) for v in sorted(value))
    return str(value)


def timing_fields(timing: object) -> dict[str, Any]:
    """The ScheduleSpec fields for a schedule given in code.

    Accepts celery's ``crontab`` and ``schedule`` (interval), a ``timedelta``, a number
    of seconds, and conveyor's :class:`Cron`, :class:`Every` and :class:`At`.
    """
    if isinstance(timing, Cron):
        return {"cron": timing.expression, "timezone": timing.timezone, "missed": timing.missed}
    if isinstance(timing, Every):
        return {"interval": float(timing.seconds), "missed": timing.missed}
    if isinstance(timing, At):
        return {"at": timing.when, "missed": timing.missed}
    if isinstance(timing, celery_crontab):
        parts = (
            timing._orig_minute,
            timing._orig_hour,
            timing._orig_day_of_month,
            timing._orig_month_of_year,
            timing._orig_day_of_week,
        )
        return {"cron": " ".join(_cron_field(part) for part in parts)}
    if isinstance(timing, celery_schedule):
        return {"interval": timing.run_every.total_seconds()}
    if isinstance(timing, timedelta):
        return {"interval": timing.total_seconds()}
    if isinstance(timing, int | float) and not isinstance(timing, bool):
        return {"interval": float(timing)}
    raise TypeError(
        f"unsupported schedule {timing!r}: use celery's crontab, a timedelta, seconds, "
        "or conveyor.schedules.Cron/Every/At"
    )


def check_timing(timing: object) -> object:
    """Validate a schedule given in code at declaration time (raises ValueError/TypeError)."""
    ScheduleSpec.model_validate({"task": "-", **timing_fields(timing)})
    return timing
