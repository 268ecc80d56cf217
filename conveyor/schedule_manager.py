"""Every change to schedules goes through ``ScheduleManager``: the API, the CLI and the
scheduler's start-up sync validate and store them the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from conveyor.errors import ArgumentsInvalid, ConveyorError, SubmitRefused, TaskNotFound
from conveyor.jobs import Job, utcnow
from conveyor.schedules import TIMING_FIELDS, Origin, Schedule, ScheduleSpec, timing_fields
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.store.schedules import DuplicateSchedule
from conveyor.submit import SubmitRequest, Submitter
from conveyor.task import TaskRegistry

log = structlog.get_logger("conveyor.schedules")


class ScheduleNotFound(ConveyorError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule {name!r}")
        self.name = name


class ScheduleExists(ConveyorError):
    def __init__(self, name: str) -> None:
        super().__init__(f"a schedule named {name!r} already exists")
        self.name = name


@dataclass(frozen=True, slots=True)
class Declaration:
    """A schedule declared in code or configuration."""

    name: str
    spec: ScheduleSpec
    origin: Origin


def declarations(tasks: TaskRegistry, settings: Settings) -> list[Declaration]:
    """``@task(schedule=...)`` schedules (named after their task), then ``settings.schedules``.

    A configured schedule replaces a code one of the same name.
    """
    found: dict[str, Declaration] = {}
    for spec in tasks:
        if spec.schedule is not None:
            fields = {"task": spec.name, **timing_fields(spec.schedule)}
            found[spec.name] = Declaration(spec.name, ScheduleSpec.model_validate(fields), "code")
    for name, configured in settings.schedules.items():
        found[name] = Declaration(name, configured, "config")
    return list(found.values())


def _same_timing(a: Schedule, b: Schedule) -> bool:
    keys = ("cron", "interval", "at", "timezone", "enabled")
    return all(getattr(a, key) == getattr(b, key) for key in keys)


def request_for(schedule: Schedule) -> SubmitRequest:
    return SubmitRequest(
        task=schedule.task,
        args=tuple(schedule.args),
        kwargs=dict(schedule.kwargs),
        queue=schedule.queue,
        priority=schedule.priority,
    )


class ScheduleManager:
    def __init__(
        self, store: JobStore, submitter: Submitter, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.store = store
        self.submitter = submitter
        self.clock = clock

    # -- reading -----------------------------------------------------------------
    def get(self, name: str) -> Schedule:
        found = self.store.get_schedule(name)
        if found is None:
            raise ScheduleNotFound(name)
        return found

    def list(self) -> list[Schedule]:
        return self.store.list_schedules()

    # -- changing ----------------------------------------------------------------
    def validate(self, spec: ScheduleSpec) -> None:
        """Check task, arguments, queue and priority exactly as a submit does."""
        self.submitter.build(
            SubmitRequest(
                task=spec.task,
                args=tuple(spec.args),
                kwargs=dict(spec.kwargs),
                queue=spec.options.queue,
                priority=spec.options.priority,
            )
        )

    def create(self, name: str, spec: ScheduleSpec, origin: Origin = "api") -> Schedule:
        self.validate(spec)
        schedule = Schedule.from_spec(name, spec, origin, self.clock())
        try:
            self.store.add_schedule(schedule)
        except DuplicateSchedule:
            raise ScheduleExists(name) from None
        log.info("schedule_created", schedule=name, task=spec.task, origin=origin)
        return schedule

    def _save(self, current: Schedule, spec: ScheduleSpec) -> Schedule:
        changed = current.redefine(spec, self.clock())
        if _same_timing(current, changed):
            changed = changed.evolve(next_run_at=current.next_run_at)
        saved = self.store.save_schedule(changed)
        if saved is None:
            raise ScheduleNotFound(current.name)
        return saved

    def update(self, name: str, changes: Mapping[str, Any]) -> Schedule:
        """Apply ``changes`` (any ScheduleSpec fields); a new cron/interval/at replaces the old.

        Raises pydantic's ValidationError when the result is not a valid schedule.
        """
        current = self.get(name)
        merged = current.spec().model_dump()
        if any(changes.get(key) is not None for key in TIMING_FIELDS):
            merged.update(dict.fromkeys(TIMING_FIELDS))
        merged.update(changes)
        spec = ScheduleSpec.model_validate(merged)
        self.validate(spec)
        saved = self._save(current, spec)
        log.info("schedule_updated", schedule=name, fields=sorted(changes), version=saved.version)
        return saved

    def pause(self, name: str) -> Schedule:
        current = self.get(name)
        saved = self._save(current, current.spec().model_copy(update={"enabled": False}))
        log.info("schedule_paused", schedule=name)
        return saved

    def resume(self, name: str) -> Schedule:
        current = self.get(name)
        saved = self._save(current, current.spec().model_copy(update={"enabled": True}))
        log.info("schedule_resumed", schedule=name, next_run_at=_iso(saved.next_run_at))
        return saved

    def delete(self, name: str) -> None:
        if not self.store.delete_schedule(name):
            raise ScheduleNotFound(name)
        log.info("schedule_deleted", schedule=name)

    def run_now(self, name: str) -> Job:
        """Submit the schedule's job now (its next periodic run is unchanged)."""
        schedule = self.get(name)
        job = self.submitter.submit(request_for(schedule))
        self.store.record_schedule_run(name, job.id, self.clock())
        log.info("schedule_run_submitted", schedule=name, job_id=job.id, manual=True)
        return job

    # -- declarations ------------------------------------------------------------
    def sync(self, declared: Sequence[Declaration]) -> None:
        """Store declared schedules: add new ones, update changed ones, never duplicate.

        Schedules created through the API are kept (a declaration of the same name is
        ignored); code/config schedules that are no longer declared are removed.
        """
        existing = {s.name: s for s in self.store.list_schedules()}
        for declaration in declared:
            self._sync_one(declaration, existing.get(declaration.name))
        names = {d.name for d in declared}
        for stale in _undeclared(existing.values(), names):
            self.store.delete_schedule(stale.name)
            log.info("schedule_removed", schedule=stale.name, origin=stale.origin)

    def _sync_one(self, declaration: Declaration, current: Schedule | None) -> None:
        name, spec = declaration.name, declaration.spec
        try:
            self.validate(spec)
        except (TaskNotFound, ArgumentsInvalid, SubmitRefused) as exc:
            log.error("schedule_invalid", schedule=name, origin=declaration.origin, error=str(exc))
            return
        if current is None:
            try:
                self.create(name, spec, declaration.origin)
            except ScheduleExists:
                return  # another scheduler added it a moment ago
            return
        if current.origin == "api":
            log.warning("schedule_declaration_ignored", schedule=name, reason="created_by_api")
            return
        # the enabled flag stays as paused/resumed through the API
        spec = spec.model_copy(update={"enabled": current.enabled})
        if current.redefine(spec, self.clock()).definition() != current.definition():
            self._save(current, spec)
            log.info("schedule_updated", schedule=name, origin=declaration.origin)


def _undeclared(schedules: Iterable[Schedule], declared: set[str]) -> list[Schedule]:
    return [s for s in schedules if s.origin != "api" and s.name not in declared]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
