"""The reliability part of the JobStore contract: memory, SQLite and PostgreSQL alike.

Subclass :class:`ReliabilityContract` and provide a ``store`` fixture (a migrated,
empty store) and a ``concurrent_store`` fixture: a callable opening another
connection to the same store (for the race tests), or the same store for the
in-memory twin.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from conveyor.jobs import Job, JobEvent, JobState
from conveyor.store.base import DuplicateJob, JobStore
from conveyor.store.reliability import DeadLetterFilter
from tests.store_contract import T0, make_job

Opener = Callable[[], JobStore]


def fail_event(job_id: str, state: JobState, attempt: int, **kw: Any) -> JobEvent:
    return JobEvent(
        job_id,
        state,
        at=T0 + timedelta(seconds=attempt),
        attempt=attempt,
        error=f"broke {attempt}",
        error_type="TemporaryError",
        traceback="Traceback ...",
        **kw,
    )


def run_to_death(store: JobStore, job: Job, attempts: int = 2) -> None:
    store.create_job(job)
    events: list[JobEvent] = []
    for n in range(1, attempts + 1):
        events.append(JobEvent(job.id, JobState.STARTED, T0, attempt=n, worker="w1"))
        final = JobState.DEAD if n == attempts else JobState.RETRYING
        events.append(fail_event(job.id, final, n, reason="exhausted" if n == attempts else None))
    store.apply_events(events)


class ReliabilityContract:
    # -- attempts ----------------------------------------------------------------
    def test_every_attempt_is_recorded_once(self, store: JobStore) -> None:
        store.create_job(make_job("a"))
        store.apply_events(
            [
                JobEvent("a", JobState.STARTED, T0, attempt=1, worker="w1"),
                JobEvent("a", JobState.STARTED, T0 + timedelta(1), attempt=1, worker="w2"),
                fail_event("a", JobState.RETRYING, 1, reason="retry"),
                JobEvent("a", JobState.STARTED, T0, attempt=2, worker="w3"),
                JobEvent("a", JobState.SUCCEEDED, T0 + timedelta(minutes=1), attempt=2),
            ]
        )
        attempts = store.list_attempts(["a", "missing"])
        assert attempts["missing"] == []
        first, second = attempts["a"]
        assert (first.attempt, first.state, first.worker) == (1, JobState.RETRYING, "w1")
        assert first.started_at == T0  # the redelivery kept the first start
        assert (first.error, first.error_type, first.reason) == (
            "broke 1",
            "TemporaryError",
            "retry",
        )
        assert first.finished_at == T0 + timedelta(seconds=1)
        assert (second.attempt, second.state, second.error) == (2, JobState.SUCCEEDED, None)

    def test_attempt_without_start_is_still_recorded(self, store: JobStore) -> None:
        store.create_job(make_job("b", state=JobState.STARTED, attempts=1))
        store.apply_events([fail_event("b", JobState.FAILED, 1, reason="time_limit")])
        (only,) = store.list_attempts(["b"])["b"]
        assert (only.state, only.reason, only.started_at) == (JobState.FAILED, "time_limit", None)

    # -- dead letters --------------------------------------------------------------
    def test_dead_job_leaves_a_dead_letter(self, store: JobStore) -> None:
        run_to_death(store, make_job("d", args=(1,), kwargs={"x": "é"}, retry={"max_retries": 1}))
        entry = store.get_dead_letter("d")
        assert entry is not None
        assert (entry.task, entry.queue, entry.args, dict(entry.kwargs)) == (
            "reports.build",
            "default",
            (1,),
            {"x": "é"},
        )
        assert entry.retry == {"max_retries": 1}
        assert (entry.attempts, entry.error, entry.reason) == (2, "broke 2", "exhausted")
        assert entry.traceback == "Traceback ..."
        assert entry.dead_at == T0 + timedelta(seconds=2)
        assert store.get_dead_letter("missing") is None

    def test_failed_job_has_no_dead_letter(self, store: JobStore) -> None:
        store.create_job(make_job("f", state=JobState.STARTED, attempts=1))
        store.apply_events([fail_event("f", JobState.FAILED, 1)])
        assert store.get_dead_letter("f") is None

    def test_list_filter_and_page_dead_letters(self, store: JobStore) -> None:
        for n in range(5):
            run_to_death(store, make_job(f"j{n}", task="a" if n % 2 else "b", queue="q"), 1)
        everything = store.list_dead_letters(DeadLetterFilter(), 10).items
        assert len(everything) == 5
        assert store.list_dead_letters(DeadLetterFilter(task="a"), 10).items[0].task == "a"
        assert len(store.list_dead_letters(DeadLetterFilter(task="a"), 10).items) == 2
        assert store.list_dead_letters(DeadLetterFilter(queue="nope"), 10).items == []
        assert len(store.list_dead_letters(DeadLetterFilter(error_type="TemporaryError"), 9).items)
        later = DeadLetterFilter(since=T0 + timedelta(days=1))
        assert store.list_dead_letters(later, 10).items == []
        earlier = DeadLetterFilter(until=T0 + timedelta(days=1))
        assert len(store.list_dead_letters(earlier, 10).items) == 5
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = store.list_dead_letters(DeadLetterFilter(), 2, cursor)
            seen += [e.job_id for e in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == [f"j{n}" for n in range(5)] and len(seen) == 5

    def test_replay_claim_is_once(self, store: JobStore) -> None:
        run_to_death(store, make_job("r"), 1)
        assert store.mark_dead_letter_replayed("r", "new-1", T0)
        assert not store.mark_dead_letter_replayed("r", "new-2", T0)
        entry = store.get_dead_letter("r")
        assert entry is not None and entry.replayed_job_id == "new-1"
        assert store.list_dead_letters(DeadLetterFilter(replayed=False), 10).items == []
        store.unmark_dead_letter_replayed("r")
        assert store.mark_dead_letter_replayed("r", "new-3", T0)
        assert not store.mark_dead_letter_replayed("missing", "x", T0)

    def test_delete_and_trim_dead_letters(self, store: JobStore) -> None:
        for n in range(6):
            job = make_job(f"t{n}", created_at=T0)
            store.create_job(job)
            store.apply_events([JobEvent(job.id, JobState.STARTED, T0, attempt=1)])
            dead = JobEvent(job.id, JobState.DEAD, T0 + timedelta(days=n), attempt=1)
            store.apply_events([dead])
        assert store.delete_dead_letter("t0")
        assert not store.delete_dead_letter("t0")
        # older than day 2 → t1 goes; then only the newest 3 remain
        removed = store.trim_dead_letters(3, T0 + timedelta(days=2))
        assert removed == 2
        left = [e.job_id for e in store.list_dead_letters(DeadLetterFilter(), 10).items]
        assert left == ["t5", "t4", "t3"]
        assert store.trim_dead_letters(3, T0) == 0

    # -- idempotency and unique keys -------------------------------------------------
    def test_idempotency_key_returns_the_first_job(self, store: JobStore) -> None:
        first, created = store.create_job_once(make_job("i1", idempotency_key="k"))
        again, created_again = store.create_job_once(make_job("i2", idempotency_key="k"))
        assert created and not created_again
        assert again.id == first.id == "i1"
        assert store.get_job("i2") is None
        other, created_other = store.create_job_once(make_job("i3", idempotency_key="k2"))
        assert created_other and other.id == "i3"

    def test_expired_idempotency_key_is_freed(self, store: JobStore) -> None:
        store.create_job_once(make_job("e1", idempotency_key="k", created_at=T0))
        assert not store.expire_idempotency_key("k", T0)
        assert store.expire_idempotency_key("k", T0 + timedelta(seconds=1))
        job, created = store.create_job_once(make_job("e2", idempotency_key="k"))
        assert created and job.id == "e2"

    def test_unique_key_is_held_until_final(self, store: JobStore) -> None:
        store.create_job_once(make_job("u1", unique_key="u"))
        held, created = store.create_job_once(make_job("u2", unique_key="u"))
        assert not created and held.id == "u1"
        store.apply_events([JobEvent("u1", JobState.STARTED, T0, attempt=1)])
        assert not store.create_job_once(make_job("u3", unique_key="u"))[1]
        store.apply_events([JobEvent("u1", JobState.SUCCEEDED, T0, attempt=1)])
        done = store.get_job("u1")
        assert done is not None and done.unique_key is None
        assert store.create_job_once(make_job("u4", unique_key="u"))[1]

    def test_duplicate_id_is_still_refused(self, store: JobStore) -> None:
        store.create_job_once(make_job("x", idempotency_key="k"))
        with pytest.raises(DuplicateJob):
            store.create_job_once(make_job("x", idempotency_key="other"))

    def test_concurrent_creates_with_one_key_make_one_job(self, concurrent_store: Opener) -> None:
        stores = [concurrent_store() for _ in range(10)]
        barrier = threading.Barrier(len(stores))
        results: list[tuple[str, bool]] = []
        lock = threading.Lock()

        def create(n: int) -> None:
            barrier.wait()
            job, created = stores[n].create_job_once(make_job(f"c{n}", idempotency_key="same"))
            with lock:
                results.append((job.id, created))

        threads = [threading.Thread(target=create, args=(n,)) for n in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({job_id for job_id, _ in results}) == 1
        assert sum(created for _, created in results) == 1

    # -- delayed jobs ----------------------------------------------------------------
    def test_claim_due_jobs_once(self, store: JobStore) -> None:
        for n, minutes in enumerate((1, 2, 30)):
            due = T0 + timedelta(minutes=minutes)
            store.create_job(make_job(f"s{n}", state=JobState.SCHEDULED, scheduled_for=due))
        store.create_job(make_job("q", scheduled_for=T0))
        now = T0 + timedelta(minutes=5)
        claimed = store.claim_due_jobs(now, 10)
        assert [j.id for j in claimed] == ["s0", "s1"]
        assert all(j.state is JobState.QUEUED for j in claimed)
        assert store.claim_due_jobs(now, 10) == []
        assert [j.id for j in store.claim_due_jobs(T0 + timedelta(hours=1), 1)] == ["s2"]

    def test_claimed_jobs_come_back_whole(self, store: JobStore) -> None:
        held = make_job(
            "s",
            state=JobState.SCHEDULED,
            scheduled_for=T0,
            args=(1, "two"),
            kwargs={"k": [3]},
            priority=7,
            queue="reports",
            workflow_id="wf-1",
        )
        store.create_job(held)
        now = T0 + timedelta(seconds=1)
        (claimed,) = store.claim_due_jobs(now, 10)
        assert claimed == held.evolve(state=JobState.QUEUED, updated_at=now)
        assert store.get_job("s") == claimed

    def test_a_claim_takes_at_most_limit_oldest_first(self, store: JobStore) -> None:
        for n in range(7):
            due = T0 + timedelta(seconds=7 - n)
            store.create_job(make_job(f"s{n}", state=JobState.SCHEDULED, scheduled_for=due))
        now = T0 + timedelta(minutes=1)
        first = store.claim_due_jobs(now, 3)
        assert [j.id for j in first] == ["s6", "s5", "s4"]
        assert [j.id for j in store.claim_due_jobs(now, 3)] == ["s3", "s2", "s1"]
        assert [j.id for j in store.claim_due_jobs(now, 3)] == ["s0"]

    def test_a_claim_can_take_jobs_due_a_little_later(self, store: JobStore) -> None:
        for n in range(3):
            due = T0 + timedelta(seconds=n)
            store.create_job(make_job(f"s{n}", state=JobState.SCHEDULED, scheduled_for=due))
        claimed = store.claim_due_jobs(T0, 10, due_by=T0 + timedelta(seconds=1))
        assert [j.id for j in claimed] == ["s0", "s1"]
        assert all(j.updated_at == T0 and j.state is JobState.QUEUED for j in claimed)
        assert store.next_due_at() == T0 + timedelta(seconds=2)

    def test_next_due_at_is_the_earliest_held_job(self, store: JobStore) -> None:
        assert store.next_due_at() is None
        store.create_job(make_job("q", scheduled_for=T0))  # QUEUED: not held
        assert store.next_due_at() is None
        for n, minutes in enumerate((30, 2, 9)):
            due = T0 + timedelta(minutes=minutes)
            store.create_job(make_job(f"s{n}", state=JobState.SCHEDULED, scheduled_for=due))
        assert store.next_due_at() == T0 + timedelta(minutes=2)
        store.claim_due_jobs(T0 + timedelta(minutes=5), 10)
        assert store.next_due_at() == T0 + timedelta(minutes=9)

    def test_unclaim_puts_a_job_back(self, store: JobStore) -> None:
        store.create_job(make_job("s", state=JobState.SCHEDULED, scheduled_for=T0))
        (job,) = store.claim_due_jobs(T0, 10)
        assert store.unclaim_job(job.id)
        assert not store.unclaim_job(job.id)
        assert [j.id for j in store.claim_due_jobs(T0, 10)] == ["s"]

    def test_concurrent_claims_release_each_job_once(self, concurrent_store: Opener) -> None:
        setup = concurrent_store()
        for n in range(40):
            setup.create_job(make_job(f"p{n:02}", state=JobState.SCHEDULED, scheduled_for=T0))
        stores = [concurrent_store() for _ in range(4)]
        barrier = threading.Barrier(len(stores))
        claimed: list[str] = []
        lock = threading.Lock()

        def claim(n: int) -> None:
            barrier.wait()
            while True:
                got = stores[n].claim_due_jobs(T0, 3)
                if not got:
                    return
                with lock:
                    claimed.extend(j.id for j in got)

        threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(claimed) == [f"p{n:02}" for n in range(40)]
