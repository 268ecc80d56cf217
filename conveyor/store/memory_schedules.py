"""The in-memory twin of the scheduler's store operations."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from conveyor.schedules import Schedule
from conveyor.store.schedules import DuplicateSchedule, ScheduleRun


class MemoryScheduleMixin:
    """ScheduleStore for MemoryStore (which provides ``_lock``)."""

    _lock: threading.RLock

    def _schedule_tables(
        self,
    ) -> tuple[
        dict[str, Schedule],
        dict[tuple[str, datetime], ScheduleRun],
        dict[str, tuple[str, datetime]],
    ]:
        if not hasattr(self, "_schedules"):
            self._schedules: dict[str, Schedule] = {}
            self._runs: dict[tuple[str, datetime], ScheduleRun] = {}
            self._leases: dict[str, tuple[str, datetime]] = {}
        return self._schedules, self._runs, self._leases

    def add_schedule(self, schedule: Schedule) -> Schedule:
        with self._lock:
            found, _, _ = self._schedule_tables()
            if schedule.name in found:
                raise DuplicateSchedule(schedule.name)
            found[schedule.name] = schedule
            return schedule

    def get_schedule(self, name: str) -> Schedule | None:
        with self._lock:
            return self._schedule_tables()[0].get(name)

    def list_schedules(self) -> list[Schedule]:
        with self._lock:
            return sorted(self._schedule_tables()[0].values(), key=lambda s: s.name)

    def save_schedule(self, schedule: Schedule) -> Schedule | None:
        with self._lock:
            found, _, _ = self._schedule_tables()
            current = found.get(schedule.name)
            if current is None:
                return None
            saved = schedule.evolve(
                version=current.version + 1,
                origin=current.origin,
                created_at=current.created_at,
                last_run_at=current.last_run_at,
                last_job_id=current.last_job_id,
            )
            found[schedule.name] = saved
            return saved

    def delete_schedule(self, name: str) -> bool:
        with self._lock:
            found, runs, _ = self._schedule_tables()
            for key in [k for k in runs if k[0] == name]:
                del runs[key]
            return found.pop(name, None) is not None

    def set_schedule_next_run(self, name: str, version: int, next_run_at: datetime | None) -> bool:
        with self._lock:
            found, _, _ = self._schedule_tables()
            current = found.get(name)
            if current is None or current.version != version:
                return False
            found[name] = current.evolve(next_run_at=next_run_at)
            return True

    def record_schedule_run(
        self, name: str, job_id: str, ran_at: datetime, due_at: datetime | None = None
    ) -> None:
        with self._lock:
            found, runs, _ = self._schedule_tables()
            current = found.get(name)
            if current is not None:
                found[name] = current.evolve(last_run_at=ran_at, last_job_id=job_id)
            run = runs.get((name, due_at)) if due_at is not None else None
            if run is not None and due_at is not None:
                runs[(name, due_at)] = ScheduleRun(
                    run.schedule, run.due_at, run.claimed_by, run.claimed_at, job_id
                )

    def claim_schedule_run(self, name: str, due_at: datetime, holder: str, at: datetime) -> bool:
        with self._lock:
            _, runs, _ = self._schedule_tables()
            if (name, due_at) in runs:
                return False
            runs[(name, due_at)] = ScheduleRun(name, due_at, holder, at)
            return True

    def unclaim_schedule_run(self, name: str, due_at: datetime) -> None:
        with self._lock:
            self._schedule_tables()[1].pop((name, due_at), None)

    def list_schedule_runs(self, name: str) -> list[ScheduleRun]:
        with self._lock:
            runs = [r for r in self._schedule_tables()[1].values() if r.schedule == name]
        return sorted(runs, key=lambda r: r.due_at)

    def prune_schedule_runs(self, before: datetime) -> int:
        with self._lock:
            runs = self._schedule_tables()[1]
            old = [key for key, run in runs.items() if run.claimed_at < before]
            for key in old:
                del runs[key]
            return len(old)

    def acquire_lease(self, name: str, holder: str, ttl: float, now: datetime) -> bool:
        with self._lock:
            _, _, held = self._schedule_tables()
            current = held.get(name)
            if current is not None and current[0] != holder and current[1] >= now:
                return False
            held[name] = (holder, now + timedelta(seconds=ttl))
            return True

    def release_lease(self, name: str, holder: str) -> None:
        with self._lock:
            _, _, held = self._schedule_tables()
            if held.get(name, ("", None))[0] == holder:
                del held[name]

    def lease_holder(self, name: str, now: datetime) -> str | None:
        with self._lock:
            current = self._schedule_tables()[2].get(name)
        if current is None or current[1] < now:
            return None
        return current[0]
