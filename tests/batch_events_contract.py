"""Batches of events in ONE ``apply_events`` call: memory, SQLite and PostgreSQL alike.

PostgreSQL applies a batch in waves of set-based statements (conveyor/store/sql_event_batch.py);
these tests pin that a batch gives exactly what its events give one at a time: a job's events
in record order, refused events leave no trace but their attempt row, history rows only for
applied events (in batch order), dead letters for applied DEAD events.

Not collected by itself: subclass :class:`BatchEventsContract` where a ``store`` fixture
(a migrated, empty store) exists.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from typing import Any

from conveyor.jobs import JobEvent, JobState
from conveyor.store.base import JobStore
from conveyor.store.observability import EventFilter
from tests.reliability_contract import fail_event
from tests.store_contract import T0, make_job


def _history(store: JobStore, after: int = 0, upto: int | None = None) -> list[tuple[Any, ...]]:
    events = store.list_job_events(after, EventFilter(), 100_000)
    rows = [e for e in events if upto is None or e.id <= upto]
    return [(e.job_id, e.task, e.queue, e.state, e.at, e.data) for e in rows]


def _started(job_id: str, attempt: int = 1, **kw: Any) -> JobEvent:
    return JobEvent(job_id, JobState.STARTED, T0 + timedelta(seconds=attempt), attempt, **kw)


def _succeeded(job_id: str, attempt: int = 1) -> JobEvent:
    at = T0 + timedelta(seconds=attempt, milliseconds=500)
    return JobEvent(job_id, JobState.SUCCEEDED, at, attempt, result={"job": job_id, "n": [1, 2]})


class BatchEventsContract:
    def test_two_events_of_one_job_in_one_batch_apply_in_order(self, store: JobStore) -> None:
        store.create_job(make_job("a"))
        assert store.apply_events([_started("a", worker="w1"), _succeeded("a")]) == 2
        job = store.get_job("a")
        assert job is not None
        assert job.state is JobState.SUCCEEDED
        assert (job.attempts, job.worker, job.result) == (1, "w1", {"job": "a", "n": [1, 2]})
        assert job.started_at == T0 + timedelta(seconds=1)
        assert job.finished_at == job.updated_at == T0 + timedelta(seconds=1, milliseconds=500)
        assert [row[3] for row in _history(store)] == [
            JobState.QUEUED,
            JobState.STARTED,
            JobState.SUCCEEDED,
        ]
        (attempt,) = store.list_attempts(["a"])["a"]
        assert (attempt.state, attempt.worker) == (JobState.SUCCEEDED, "w1")
        assert attempt.started_at == T0 + timedelta(seconds=1)

    def test_a_later_event_of_a_job_sees_the_earlier_one(self, store: JobStore) -> None:
        # SUCCEEDED before STARTED in the batch: refused (QUEUED cannot succeed), then started
        store.create_job(make_job("a"))
        assert store.apply_events([_succeeded("a"), _started("a")]) == 1
        job = store.get_job("a")
        assert job is not None and job.state is JobState.STARTED

    def test_mix_of_applied_and_refused_events(self, store: JobStore) -> None:
        store.create_job(make_job("queued"))
        store.create_job(make_job("done", state=JobState.SUCCEEDED, attempts=1))
        store.create_job(make_job("newer", state=JobState.STARTED, attempts=3))
        batch = [
            _started("queued"),
            _started("done"),  # a final job never moves
            _started("missing"),  # no such job
            _succeeded("newer", attempt=2),  # stale: the store knows attempt 3
            _succeeded("queued"),
            JobEvent.progress_report("done", 1, 2, None),  # final: no progress either
        ]
        assert store.apply_events(batch) == 2
        assert [(row[0], row[3]) for row in _history(store)[3:]] == [
            ("queued", JobState.STARTED),
            ("queued", JobState.SUCCEEDED),
        ]
        for job_id, state in (("done", JobState.SUCCEEDED), ("newer", JobState.STARTED)):
            job = store.get_job(job_id)
            assert job is not None and job.state is state and job.updated_at == T0
        assert store.get_job("missing") is None

    def test_many_jobs_in_one_batch(self, store: JobStore) -> None:
        ids = [f"job-{n:03}" for n in range(150)]
        for job_id in ids:
            store.create_job(make_job(job_id))
        # all starts first, then all ends (the order a buffered recorder may hand over)
        batch = [_started(j, worker=f"w-{j}") for j in ids] + [_succeeded(j) for j in ids]
        assert store.apply_events(batch) == 300
        for job_id in ids:
            job = store.get_job(job_id)
            assert job is not None and job.state is JobState.SUCCEEDED
            assert job.worker == f"w-{job_id}"
        history = _history(store)[150:]
        assert [(row[0], row[3]) for row in history] == [(e.job_id, e.state) for e in batch]
        attempts = store.list_attempts(ids)
        assert all([a.state for a in attempts[j]] == [JobState.SUCCEEDED] for j in ids)

    def test_a_dead_event_among_others(self, store: JobStore) -> None:
        for job_id in ("ok-1", "dies", "ok-2"):
            store.create_job(make_job(job_id, retry={"max_retries": 0}))
        batch = [
            _started("ok-1"),
            _started("dies", worker="w9"),
            _started("ok-2"),
            _succeeded("ok-1"),
            fail_event("dies", JobState.DEAD, 1, reason="exhausted"),
            _succeeded("ok-2"),
        ]
        assert store.apply_events(batch) == 6
        assert store.get_dead_letter("ok-1") is None and store.get_dead_letter("ok-2") is None
        letter = store.get_dead_letter("dies")
        assert letter is not None
        assert (letter.error, letter.error_type, letter.reason) == (
            "broke 1",
            "TemporaryError",
            "exhausted",
        )
        assert (letter.attempts, letter.retry, letter.dead_at) == (
            1,
            {"max_retries": 0},
            T0 + timedelta(seconds=1),
        )
        # a second DEAD (a late duplicate) is refused and keeps the first dead letter
        assert store.apply_events([fail_event("dies", JobState.DEAD, 1, reason="other")]) == 0
        again = store.get_dead_letter("dies")
        assert again is not None and again.reason == "exhausted"

    def test_a_random_batch_gives_what_its_events_give_one_at_a_time(self, store: JobStore) -> None:
        # the same jobs twice: "s-" gets its events one call each, "b-" all in one call
        rng = random.Random(11)
        states = [JobState.QUEUED, JobState.SCHEDULED, JobState.STARTED, JobState.RETRYING]
        names = [f"{n:02}" for n in range(24)]
        for name in names:
            job = make_job(name, state=rng.choice(states), attempts=rng.randint(0, 2))
            store.create_job(dataclasses.replace(job, id=f"s-{name}"))
            store.create_job(dataclasses.replace(job, id=f"b-{name}"))
        picks = [(rng.choice([*names, "absent"]), n) for n in range(160)]

        def events(prefix: str) -> list[JobEvent]:
            return [_random_event(random.Random(n), prefix + name, n) for name, n in picks]

        before = store.last_job_event_id()
        applied = sum(store.apply_events([e]) for e in events("s-"))
        between = store.last_job_event_id()
        assert store.apply_events(events("b-")) == applied > 20
        for name in names:
            one, batched = store.get_job(f"s-{name}"), store.get_job(f"b-{name}")
            assert one is not None and batched is not None
            assert dataclasses.replace(batched, id=one.id) == one
            letter, batched_letter = (
                store.get_dead_letter(f"s-{name}"),
                store.get_dead_letter(f"b-{name}"),
            )
            assert (letter is None) == (batched_letter is None)
            if letter is not None and batched_letter is not None:
                assert dataclasses.replace(batched_letter, job_id=letter.job_id) == letter
        attempts = store.list_attempts([f"{p}{name}" for p in ("s-", "b-") for name in names])
        for name in names:
            expected = attempts[f"s-{name}"]
            got = [dataclasses.replace(a, job_id=f"s-{name}") for a in attempts[f"b-{name}"]]
            assert got == expected
        one_rows = _history(store, before, between)
        batch_rows = [("s-" + row[0][2:], *row[1:]) for row in _history(store, between)]
        assert batch_rows == one_rows
        assert {row[3] for row in one_rows} >= {JobState.STARTED, JobState.DEAD}


def _random_event(rng: random.Random, job_id: str, n: int) -> JobEvent:
    at = T0 + timedelta(seconds=n)
    if rng.random() < 0.1:
        return JobEvent(job_id, JobState.STARTED, at, progress={"done": n, "total": None})
    state = rng.choice(
        [
            JobState.QUEUED,
            JobState.STARTED,
            JobState.STARTED,
            JobState.SUCCEEDED,
            JobState.RETRYING,
            JobState.FAILED,
            JobState.DEAD,
            JobState.CANCELLED,
        ]
    )
    attempt = rng.randint(0, 3)
    if state is JobState.SUCCEEDED:
        return JobEvent(job_id, state, at, attempt, result=[n, {"x": None}])
    if state in (JobState.RETRYING, JobState.FAILED, JobState.DEAD):
        return JobEvent(
            job_id, state, at, attempt, error=f"e{n}", error_type="E", reason=f"r{n % 3}"
        )
    return JobEvent(job_id, state, at, attempt, worker=f"w{n % 4}")
