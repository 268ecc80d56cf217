"""The dashboard's store queries: every store (memory, SQLite, PostgreSQL) must pass these.

Not collected by itself; a test module subclasses :class:`DashboardStoreContract`
and provides a ``store`` fixture (migrated, empty).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from conveyor.jobs import Job, JobState
from conveyor.store.base import Failure, JobStore
from conveyor.store.dashboard import JobQuery
from conveyor.store.reliability import DeadLetterFilter
from tests.store_contract import T0, make_job


def _seed(store: JobStore) -> list[Job]:
    jobs = [
        make_job("a", task="email.send", queue="email", kwargs={"to": "Ann@example.com"}),
        make_job(
            "b",
            task="email.send",
            queue="email",
            state=JobState.FAILED,
            kwargs={"to": "bob@example.com"},
            error="SMTP 550 mailbox unavailable",
            created_at=T0 + timedelta(minutes=1),
        ),
        make_job(
            "c",
            task="reports.build",
            args=(42, "100%_done"),
            state=JobState.SUCCEEDED,
            created_at=T0 + timedelta(minutes=2),
        ),
        make_job(
            "d",
            task="reports.build",
            state=JobState.DEAD,
            kwargs={"city": "Zürich"},
            error="timeout",
            created_at=T0 + timedelta(minutes=3),
        ),
    ]
    for job in jobs:
        store.create_job(job)
    return jobs


def _ids(store: JobStore, query: JobQuery) -> list[str]:
    return [job.id for job in store.search_jobs(query, 100).items]


class DashboardStoreContract:
    def test_search_without_filters_is_newest_first(self, store: JobStore) -> None:
        _seed(store)
        assert _ids(store, JobQuery()) == ["d", "c", "b", "a"]

    def test_search_by_states_task_and_queue(self, store: JobStore) -> None:
        _seed(store)
        failed = (JobState.FAILED, JobState.DEAD)
        assert _ids(store, JobQuery(states=failed)) == ["d", "b"]
        assert _ids(store, JobQuery(task="email.send")) == ["b", "a"]
        assert _ids(store, JobQuery(queue="email", states=failed)) == ["b"]
        assert _ids(store, JobQuery(task="nope")) == []

    def test_search_by_time_range(self, store: JobStore) -> None:
        _seed(store)
        query = JobQuery(
            created_after=T0 + timedelta(minutes=1), created_before=T0 + timedelta(minutes=3)
        )
        assert _ids(store, query) == ["c", "b"]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("ann@EXAMPLE", ["a"]),  # keyword arguments, ASCII case folded
            ("mailbox", ["b"]),  # error text
            ("42", ["c"]),  # positional arguments
            ("100%_", ["c"]),  # LIKE wildcards are literal
            ("%", ["c"]),
            ("_", ["c"]),
            ("Zürich", ["d"]),  # non-ASCII, stored escaped in JSON
            ("example.com", ["b", "a"]),
            ("nothing like it", []),
        ],
    )
    def test_search_text(self, store: JobStore, text: str, expected: list[str]) -> None:
        _seed(store)
        assert _ids(store, JobQuery(text=text)) == expected

    def test_search_pages_with_cursor(self, store: JobStore) -> None:
        for n in range(7):
            store.create_job(make_job(f"j{n}", created_at=T0 + timedelta(seconds=n // 2)))
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = store.search_jobs(JobQuery(states=(JobState.QUEUED,)), 3, cursor)
            seen += [job.id for job in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == ["j6", "j5", "j4", "j3", "j2", "j1", "j0"]

    def test_count_jobs_by_queue(self, store: JobStore) -> None:
        _seed(store)
        counts = store.count_jobs_by_queue()
        assert {queue: dict(states) for queue, states in counts.items()} == {
            "email": {JobState.QUEUED: 1, JobState.FAILED: 1},
            "default": {JobState.SUCCEEDED: 1, JobState.DEAD: 1},
        }

    def test_count_jobs_by_queue_empty(self, store: JobStore) -> None:
        assert dict(store.count_jobs_by_queue()) == {}

    def test_count_finished_per_bucket(self, store: JobStore) -> None:
        finished = [
            ("s1", JobState.SUCCEEDED, T0),  # first instant of bucket 0
            ("s2", JobState.SUCCEEDED, T0 + timedelta(seconds=59.9)),
            ("f1", JobState.FAILED, T0 + timedelta(seconds=60)),
            ("d1", JobState.DEAD, T0 + timedelta(seconds=179)),
            ("c1", JobState.CANCELLED, T0 + timedelta(seconds=10)),  # not counted
            ("old", JobState.SUCCEEDED, T0 - timedelta(seconds=1)),  # before the window
            ("late", JobState.SUCCEEDED, T0 + timedelta(seconds=180)),  # at the end: excluded
        ]
        for job_id, state, at in finished:
            store.create_job(make_job(job_id, state=state, finished_at=at))
        store.create_job(make_job("running", state=JobState.STARTED))
        buckets = store.count_finished(T0, T0 + timedelta(seconds=180), 60)
        assert [(b.start, b.succeeded, b.failed) for b in buckets] == [
            (T0, 2, 0),
            (T0 + timedelta(seconds=60), 0, 1),
            (T0 + timedelta(seconds=120), 0, 1),
        ]

    def test_count_finished_empty_window(self, store: JobStore) -> None:
        buckets = store.count_finished(T0, T0 + timedelta(minutes=2), 60)
        assert [(b.succeeded, b.failed) for b in buckets] == [(0, 0), (0, 0)]

    def test_dead_letters_filter_by_reason_and_error_text(self, store: JobStore) -> None:
        """The dashboard's dead-letter filters: reason (exact) and error text (any case)."""
        deaths = (
            ("x", "SMTPError", "Mailbox UNAVAILABLE 100%", "exhausted"),
            ("y", "PermanentError", "bad address", "permanent"),
            ("z", "TimeLimitExceeded", "hard time limit", "time_limit"),
        )
        for job_id, error_type, error, reason in deaths:
            store.create_job(make_job(job_id, task="email.send", state=JobState.QUEUED))
            store.mark_started(job_id, 1, "w1", T0)
            store.mark_dead(job_id, 1, Failure(error, error_type, None, T0, reason))

        def ids(**values: str) -> set[str]:
            return {e.job_id for e in store.list_dead_letters(DeadLetterFilter(**values), 50).items}

        assert ids() == {"x", "y", "z"}
        assert ids(reason="permanent") == {"y"}
        assert ids(text="mailbox unavailable") == {"x"}
        assert ids(text="100%") == {"x"}
        assert ids(text="0%_") == set()  # LIKE wildcards are matched literally
        assert ids(text="permanenterror") == {"y"}  # the error type too
        assert ids(text="limit", reason="exhausted") == set()
