"""The scheduler's store operations on SQL (a mixin of SqlStore)."""

from __future__ import annotations

import dataclasses
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from conveyor.schedules import Schedule
from conveyor.store.base import StoreError
from conveyor.store.schedules import DuplicateSchedule, ScheduleRun
from conveyor.store.schema import leases, schedule_runs, schedules

SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(Schedule))
#: Columns a save writes (everything the definition, pause/resume or an edit may change).
SAVED_FIELDS = (
    "task",
    "cron",
    "interval",
    "at",
    "timezone",
    "args",
    "kwargs",
    "queue",
    "priority",
    "enabled",
    "missed",
    "next_run_at",
    "updated_at",
)


class SqlScheduleMixin:
    """ScheduleStore for SqlStore (which provides ``_tx``)."""

    def _tx(self, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _insert_unique(self, table: Any, values: dict[str, Any]) -> bool:
        """INSERT one row; False (nothing written) when the key already exists."""
        try:
            with self._tx(write=True) as conn:
                conn.execute(insert(table).values(values))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                return False
            raise
        return True

    # -- schedules ---------------------------------------------------------------
    def add_schedule(self, schedule: Schedule) -> Schedule:
        if not self._insert_unique(schedules, _schedule_row(schedule)):
            raise DuplicateSchedule(schedule.name)
        return schedule

    def get_schedule(self, name: str) -> Schedule | None:
        with self._tx() as conn:
            row = conn.execute(select(schedules).where(schedules.c.name == name)).first()
        return None if row is None else _schedule_from_row(row._mapping)

    def list_schedules(self) -> list[Schedule]:
        with self._tx() as conn:
            rows = conn.execute(select(schedules).order_by(schedules.c.name)).all()
        return [_schedule_from_row(row._mapping) for row in rows]

    def save_schedule(self, schedule: Schedule) -> Schedule | None:
        row = _schedule_row(schedule)
        values = {name: row[name] for name in SAVED_FIELDS}
        query = (
            update(schedules)
            .where(schedules.c.name == schedule.name)
            .values(version=schedules.c.version + 1, **values)
        )
        with self._tx(write=True) as conn:
            if conn.execute(query).rowcount != 1:
                return None
            saved = conn.execute(select(schedules).where(schedules.c.name == schedule.name)).one()
        return _schedule_from_row(saved._mapping)

    def delete_schedule(self, name: str) -> bool:
        with self._tx(write=True) as conn:
            conn.execute(delete(schedule_runs).where(schedule_runs.c.schedule == name))
            return conn.execute(delete(schedules).where(schedules.c.name == name)).rowcount == 1

    def set_schedule_next_run(self, name: str, version: int, next_run_at: datetime | None) -> bool:
        query = (
            update(schedules)
            .where(schedules.c.name == name, schedules.c.version == version)
            .values(next_run_at=next_run_at)
        )
        with self._tx(write=True) as conn:
            return conn.execute(query).rowcount == 1

    def record_schedule_run(
        self, name: str, job_id: str, ran_at: datetime, due_at: datetime | None = None
    ) -> None:
        with self._tx(write=True) as conn:
            conn.execute(
                update(schedules)
                .where(schedules.c.name == name)
                .values(last_run_at=ran_at, last_job_id=job_id)
            )
            if due_at is not None:
                conn.execute(
                    update(schedule_runs)
                    .where(schedule_runs.c.schedule == name, schedule_runs.c.due_at == due_at)
                    .values(job_id=job_id)
                )

    # -- claimed runs ------------------------------------------------------------
    def claim_schedule_run(self, name: str, due_at: datetime, holder: str, at: datetime) -> bool:
        row = {"schedule": name, "due_at": due_at, "claimed_by": holder, "claimed_at": at}
        return self._insert_unique(schedule_runs, row)

    def unclaim_schedule_run(self, name: str, due_at: datetime) -> None:
        with self._tx(write=True) as conn:
            conn.execute(
                delete(schedule_runs).where(
                    schedule_runs.c.schedule == name, schedule_runs.c.due_at == due_at
                )
            )

    def list_schedule_runs(self, name: str) -> list[ScheduleRun]:
        query = (
            select(schedule_runs)
            .where(schedule_runs.c.schedule == name)
            .order_by(schedule_runs.c.due_at)
        )
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [ScheduleRun(**dict(row._mapping)) for row in rows]

    def prune_schedule_runs(self, before: datetime) -> int:
        with self._tx(write=True) as conn:
            result = conn.execute(delete(schedule_runs).where(schedule_runs.c.claimed_at < before))
            return int(result.rowcount)

    # -- leases ------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, ttl: float, now: datetime) -> bool:
        expires = now + timedelta(seconds=ttl)
        query = (
            update(leases)
            .where(leases.c.name == name, or_(leases.c.holder == holder, leases.c.expires_at < now))
            .values(holder=holder, expires_at=expires)
        )
        with self._tx(write=True) as conn:
            if conn.execute(query).rowcount == 1:
                return True
        return self._insert_unique(leases, {"name": name, "holder": holder, "expires_at": expires})

    def release_lease(self, name: str, holder: str) -> None:
        with self._tx(write=True) as conn:
            conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))

    def lease_holder(self, name: str, now: datetime) -> str | None:
        query = select(leases.c.holder).where(leases.c.name == name, leases.c.expires_at >= now)
        with self._tx() as conn:
            holder = conn.execute(query).scalar()
        return None if holder is None else str(holder)


def _schedule_row(schedule: Schedule) -> dict[str, Any]:
    row = {name: getattr(schedule, name) for name in SCHEDULE_FIELDS}
    row["args"] = list(schedule.args)
    row["kwargs"] = dict(schedule.kwargs)
    return row


def _schedule_from_row(row: RowMapping) -> Schedule:
    values = {name: row[name] for name in SCHEDULE_FIELDS}
    values["args"] = tuple(values["args"] or ())
    values["kwargs"] = dict(values["kwargs"] or {})
    values["enabled"] = bool(values["enabled"])
    return Schedule(**values)
