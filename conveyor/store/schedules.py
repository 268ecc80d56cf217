"""The scheduler's store operations: schedules, claimed runs and leader leases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from conveyor.schedules import Schedule


class DuplicateSchedule(Exception):
    """A schedule with this name already exists."""


@dataclass(frozen=True, slots=True)
class ScheduleRun:
    """One claimed period of a schedule: at most one exists per (schedule, due_at)."""

    schedule: str
    due_at: datetime
    claimed_by: str
    claimed_at: datetime
    job_id: str | None = None


@runtime_checkable
class ScheduleStore(Protocol):
    # -- schedules ---------------------------------------------------------------
    def add_schedule(self, schedule: Schedule) -> Schedule:
        """Store a new schedule; raises DuplicateSchedule when the name is taken."""
        ...

    def get_schedule(self, name: str) -> Schedule | None: ...
    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        ...

    def save_schedule(self, schedule: Schedule) -> Schedule | None:
        """Write the definition, enabled flag and next run of ``schedule``; bumps ``version``.

        Returns the stored schedule, or None when there is no schedule of that name.
        """
        ...

    def delete_schedule(self, name: str) -> bool:
        """Delete a schedule and its claimed runs; False when it did not exist."""
        ...

    def set_schedule_next_run(self, name: str, version: int, next_run_at: datetime | None) -> bool:
        """Set the next run, only if the schedule is still at ``version`` (not edited since)."""
        ...

    def record_schedule_run(
        self, name: str, job_id: str, ran_at: datetime, due_at: datetime | None = None
    ) -> None:
        """Note the job a schedule submitted (and on its claimed run, if ``due_at``)."""
        ...

    # -- claimed runs ------------------------------------------------------------
    def claim_schedule_run(self, name: str, due_at: datetime, holder: str, at: datetime) -> bool:
        """Claim the period of ``name`` due at ``due_at``; False if it is already claimed."""
        ...

    def unclaim_schedule_run(self, name: str, due_at: datetime) -> None:
        """Drop a claim whose job could not be submitted, so the period can be retried."""
        ...

    def list_schedule_runs(self, name: str) -> list[ScheduleRun]:
        """Claimed runs of ``name``, oldest due time first."""
        ...

    def prune_schedule_runs(self, before: datetime) -> int:
        """Forget runs claimed before ``before``; returns how many."""
        ...

    # -- leases ------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, ttl: float, now: datetime) -> bool:
        """Take or renew lease ``name`` for ``ttl`` seconds, unless another holder's is live."""
        ...

    def release_lease(self, name: str, holder: str) -> None: ...
    def lease_holder(self, name: str, now: datetime) -> str | None:
        """Who holds lease ``name`` now (None if nobody or expired)."""
        ...
