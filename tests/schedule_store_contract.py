"""The scheduler's part of the JobStore contract: memory, SQLite and PostgreSQL alike.

Not collected by itself: a test module subclasses :class:`ScheduleStoreContract`
and provides ``store``, a migrated, empty JobStore.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from conveyor.schedules import Schedule, ScheduleSpec
from conveyor.store.base import JobStore
from conveyor.store.schedules import DuplicateSchedule

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_schedule(name: str = "nightly", **fields: object) -> Schedule:
    values: dict[str, object] = {"task": "reports.build", "cron": "30 2 * * *"}
    values.update(fields)
    return Schedule.from_spec(name, ScheduleSpec.model_validate(values), "api", T0)


class ScheduleStoreContract:
    def test_add_get_list(self, store: JobStore) -> None:
        nightly = make_schedule(
            "nightly", args=[1, "ü"], kwargs={"a": {"b": [1]}}, timezone="Europe/Prague"
        )
        every = make_schedule(
            "every", cron=None, interval=2.5, options={"queue": "q", "priority": 3}
        )
        once = make_schedule("once", cron=None, at="2030-01-01T00:00:00Z")
        for schedule in (nightly, every, once):
            store.add_schedule(schedule)
        assert store.get_schedule("nightly") == nightly
        assert store.get_schedule("every") == every
        assert store.get_schedule("once") == once
        assert store.get_schedule("missing") is None
        assert [s.name for s in store.list_schedules()] == ["every", "nightly", "once"]
        got = store.get_schedule("every")
        assert got is not None and got.interval == 2.5 and got.queue == "q" and got.priority == 3
        assert got.next_run_at == T0 + timedelta(seconds=2.5)

    def test_duplicate_name_is_refused(self, store: JobStore) -> None:
        store.add_schedule(make_schedule("a"))
        with pytest.raises(DuplicateSchedule):
            store.add_schedule(make_schedule("a", task="other"))
        assert store.get_schedule("a") == make_schedule("a")

    def test_save_bumps_version_and_keeps_bookkeeping(self, store: JobStore) -> None:
        store.add_schedule(make_schedule("a"))
        store.record_schedule_run("a", "job-1", T0 + timedelta(hours=1))
        changed = make_schedule("a", cron=None, interval=60, enabled=False).evolve(
            origin="code", last_run_at=None, updated_at=T0 + timedelta(hours=2)
        )
        saved = store.save_schedule(changed)
        assert saved is not None
        assert saved.version == 2
        assert (saved.cron, saved.interval, saved.enabled) == (None, 60, False)
        assert saved.origin == "api"  # origin is fixed at creation
        assert saved.last_job_id == "job-1"
        assert saved.last_run_at == T0 + timedelta(hours=1)
        assert saved.updated_at == T0 + timedelta(hours=2)
        assert store.get_schedule("a") == saved
        assert store.save_schedule(make_schedule("missing")) is None

    def test_next_run_only_at_the_expected_version(self, store: JobStore) -> None:
        store.add_schedule(make_schedule("a"))
        later = T0 + timedelta(days=3)
        assert store.set_schedule_next_run("a", 1, later)
        assert store.get_schedule("a").next_run_at == later  # type: ignore[union-attr]
        saved = store.save_schedule(make_schedule("a"))
        assert saved is not None and saved.version == 2
        assert not store.set_schedule_next_run("a", 1, T0)  # edited meanwhile: the edit wins
        assert store.get_schedule("a").next_run_at == saved.next_run_at  # type: ignore[union-attr]
        assert store.set_schedule_next_run("a", 2, None)
        assert store.get_schedule("a").next_run_at is None  # type: ignore[union-attr]
        assert not store.set_schedule_next_run("missing", 1, T0)

    def test_claims_are_unique_per_period(self, store: JobStore) -> None:
        store.add_schedule(make_schedule("a"))
        due = T0 + timedelta(minutes=1)
        assert store.claim_schedule_run("a", due, "holder-1", T0)
        assert not store.claim_schedule_run("a", due, "holder-2", T0)
        assert store.claim_schedule_run("a", due + timedelta(seconds=1), "holder-2", T0)
        store.record_schedule_run("a", "job-1", T0, due)
        runs = store.list_schedule_runs("a")
        assert [(r.due_at, r.claimed_by, r.job_id) for r in runs] == [
            (due, "holder-1", "job-1"),
            (due + timedelta(seconds=1), "holder-2", None),
        ]
        store.unclaim_schedule_run("a", due + timedelta(seconds=1))
        assert store.claim_schedule_run("a", due + timedelta(seconds=1), "holder-3", T0)
        schedule = store.get_schedule("a")
        assert schedule is not None and schedule.last_job_id == "job-1"

    def test_concurrent_claims_of_one_period_have_one_winner(self, store: JobStore) -> None:
        store.add_schedule(make_schedule("a"))
        wins: list[bool] = []
        barrier = threading.Barrier(6)

        def claim(n: int) -> None:
            barrier.wait()
            wins.append(store.claim_schedule_run("a", T0, f"h{n}", T0))

        threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(wins) == [False] * 5 + [True]

    def test_prune_forgets_old_claims(self, store: JobStore) -> None:
        store.add_schedule(make_schedule("a"))
        for minutes in range(4):
            at = T0 + timedelta(minutes=minutes)
            store.claim_schedule_run("a", at - timedelta(days=7), "h", at)
        assert store.prune_schedule_runs(T0 + timedelta(minutes=2)) == 2
        assert [r.claimed_at for r in store.list_schedule_runs("a")] == [
            T0 + timedelta(minutes=2),
            T0 + timedelta(minutes=3),
        ]
        assert store.prune_schedule_runs(T0) == 0

    def test_delete_removes_schedule_and_runs(self, store: JobStore) -> None:
        store.add_schedule(make_schedule("a"))
        store.claim_schedule_run("a", T0, "h", T0)
        assert store.delete_schedule("a")
        assert store.get_schedule("a") is None
        assert store.list_schedule_runs("a") == []
        assert not store.delete_schedule("a")

    def test_lease_acquire_renew_expire_release(self, store: JobStore) -> None:
        assert store.lease_holder("leader", T0) is None
        assert store.acquire_lease("leader", "a", 10, T0)
        assert not store.acquire_lease("leader", "b", 10, T0 + timedelta(seconds=5))
        assert store.acquire_lease("leader", "a", 10, T0 + timedelta(seconds=9))  # renewed
        assert store.lease_holder("leader", T0 + timedelta(seconds=18)) == "a"
        assert not store.acquire_lease("leader", "b", 10, T0 + timedelta(seconds=18))
        assert store.lease_holder("leader", T0 + timedelta(seconds=20)) is None
        assert store.acquire_lease("leader", "b", 10, T0 + timedelta(seconds=20))  # expired
        assert not store.acquire_lease("leader", "a", 10, T0 + timedelta(seconds=21))
        store.release_lease("leader", "a")  # not a's: nothing happens
        assert store.lease_holder("leader", T0 + timedelta(seconds=21)) == "b"
        store.release_lease("leader", "b")
        assert store.lease_holder("leader", T0 + timedelta(seconds=21)) is None
        assert store.acquire_lease("leader", "a", 10, T0 + timedelta(seconds=21))
        assert store.acquire_lease("other", "b", 10, T0 + timedelta(seconds=21))  # independent
