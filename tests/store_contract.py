"""The JobStore contract: every store (in-memory, SQLite, PostgreSQL) must pass these.

Not collected by itself. A test module subclasses the classes below and provides
the fixtures they use:

* :class:`StoreContract` needs ``store``: a migrated, empty :class:`JobStore`.
* :class:`SqlStoreContract` needs ``fresh_url``: the URL of an empty SQL database.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import QueuePool

from conveyor.jobs import TRANSITIONS, Job, JobEvent, JobState, apply_event
from conveyor.store.base import (
    ApiKey,
    DuplicateJob,
    Failure,
    JobFilter,
    JobStore,
    StoreError,
)
from conveyor.store.schema import metadata
from conveyor.store.sql import SqlStore

REPO_ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
ALL_PAIRS = list(itertools.product(JobState, JobState))
#: every pair with a named ``mark_*`` method for the target (nothing enters SCHEDULED)
NAMED_PAIRS = [(s, t) for s, t in ALL_PAIRS if t is not JobState.SCHEDULED]
UNICODE = 'héllo wörld ✓ 日本語 🎉 \u00a0"quoted" \\ back'


def make_job(job_id: str, **changes: Any) -> Job:
    values: dict[str, Any] = {
        "task": "reports.build",
        "queue": "default",
        "state": JobState.QUEUED,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(changes)
    return Job(id=job_id, **values)


def full_event(job_id: str, state: JobState, attempt: int = 1) -> JobEvent:
    """An event with every field set, so each column ``changes()`` writes is checked."""
    return JobEvent(
        job_id,
        state,
        at=T0 + timedelta(minutes=5),
        attempt=attempt,
        worker="worker-1@host",
        result={"rows": 3, "name": UNICODE},
        error="it broke",
        error_type="ValueError",
        traceback="Traceback (most recent call last):\n  ...\nValueError: it broke",
    )


def collect_pages(store: JobStore, flt: JobFilter, limit: int) -> list[list[Job]]:
    pages: list[list[Job]] = []
    cursor: str | None = None
    while True:
        page = store.list_jobs(flt, limit, cursor)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not terminate"
        cursor = page.next_cursor


def newest_first(jobs: list[Job]) -> list[str]:
    return [j.id for j in sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)]


class StoreContract:
    """Behaviour shared by every JobStore. Needs a ``store`` fixture (migrated, empty)."""

    # -- create / get / delete ----------------------------------------------------
    def test_create_and_get_round_trip(self, store: JobStore) -> None:
        job = make_job(
            "job-1",
            args=(1, "two", [3.5, None], {"k": True}),
            kwargs={"to": UNICODE, "nested": {"a": [1, 2, {"b": None}]}},
            priority=7,
            scheduled_for=T0 + timedelta(hours=1),
            state=JobState.SCHEDULED,
        )
        assert store.create_job(job) == job
        assert store.get_job("job-1") == job

    def test_get_missing_is_none(self, store: JobStore) -> None:
        assert store.get_job("nope") is None

    def test_duplicate_id_is_refused_and_keeps_the_original(self, store: JobStore) -> None:
        original = make_job("dup", task="first")
        store.create_job(original)
        with pytest.raises(DuplicateJob):
            store.create_job(make_job("dup", task="second"))
        assert store.get_job("dup") == original

    def test_duplicate_is_a_store_error(self) -> None:
        assert issubclass(DuplicateJob, StoreError)

    def test_delete(self, store: JobStore) -> None:
        store.create_job(make_job("gone"))
        store.create_job(make_job("kept"))
        store.delete_job("gone")
        store.delete_job("never-existed")
        assert store.get_job("gone") is None
        assert store.get_job("kept") is not None

    # -- listing --------------------------------------------------------------------
    def test_list_pages_newest_first_without_gaps(self, store: JobStore) -> None:
        # 25 jobs; every three share a timestamp so ties are broken by id
        created = [
            store.create_job(make_job(f"job-{i:02d}", created_at=T0 + timedelta(seconds=i // 3)))
            for i in range(25)
        ]
        pages = collect_pages(store, JobFilter(), 10)
        assert [len(p) for p in pages] == [10, 10, 5]
        ids = [j.id for page in pages for j in page]
        assert ids == newest_first(created)
        assert len(set(ids)) == 25

    def test_list_exactly_full_last_page_has_no_cursor(self, store: JobStore) -> None:
        for i in range(20):
            store.create_job(make_job(f"j{i:02d}", created_at=T0 + timedelta(seconds=i)))
        first = store.list_jobs(JobFilter(), 10)
        assert first.next_cursor is not None
        second = store.list_jobs(JobFilter(), 10, first.next_cursor)
        assert len(second.items) == 10
        assert second.next_cursor is None

    def test_list_empty(self, store: JobStore) -> None:
        page = store.list_jobs(JobFilter(), 10)
        assert page.items == []
        assert page.next_cursor is None

    def test_list_orders_ids_by_code_point_on_ties(self, store: JobStore) -> None:
        ids = ["a-1", "A-1", "a_1", "a1", "b", "B", "ab", "a-10", "a-2", "Z", "~", "é"]
        created = [store.create_job(make_job(i)) for i in ids]
        assert [j.id for j in store.list_jobs(JobFilter(), 100).items] == newest_first(created)
        paged = [j.id for page in collect_pages(store, JobFilter(), 5) for j in page]
        assert paged == sorted(ids, reverse=True)

    def test_list_filters(self, store: JobStore) -> None:
        created: list[Job] = []
        for i in range(30):
            job = make_job(
                f"f{i:02d}",
                state=[JobState.QUEUED, JobState.SUCCEEDED, JobState.FAILED][i % 3],
                task=["a.one", "b.two"][i % 2],
                queue=["default", "email", "analytics", "cleanup", "maintenance"][i % 5],
                created_at=T0 + timedelta(seconds=i),
            )
            created.append(store.create_job(job))
        filters = [
            JobFilter(state=JobState.SUCCEEDED),
            JobFilter(task="b.two"),
            JobFilter(queue="email"),
            JobFilter(state=JobState.FAILED, task="a.one"),
            JobFilter(state=JobState.QUEUED, task="b.two", queue="default"),
            JobFilter(state=JobState.DEAD),
            JobFilter(task="missing"),
        ]
        for flt in filters:
            expected = newest_first([j for j in created if _matches(j, flt)])
            got = [j.id for page in collect_pages(store, flt, 4) for j in page]
            assert got == expected, flt

    def test_list_bad_cursor_raises_value_error(self, store: JobStore) -> None:
        with pytest.raises(ValueError):
            store.list_jobs(JobFilter(), 10, "not a cursor!!")

    def test_list_orders_by_instant_across_time_zones(self, store: JobStore) -> None:
        ist = timezone(timedelta(hours=5, minutes=30))
        older = make_job("older", created_at=datetime(2024, 5, 1, 10, 0, tzinfo=ist))  # 04:30Z
        newer = make_job("newer", created_at=datetime(2024, 5, 1, 5, 0, tzinfo=UTC))
        store.create_job(older)
        store.create_job(newer)
        first = store.list_jobs(JobFilter(), 1)
        assert [j.id for j in first.items] == ["newer"]
        assert first.next_cursor is not None
        second = store.list_jobs(JobFilter(), 1, first.next_cursor)
        assert [j.id for j in second.items] == ["older"]
        assert second.next_cursor is None

    # -- values ---------------------------------------------------------------------
    def test_datetimes_round_trip_time_zone_aware(self, store: JobStore) -> None:
        ist = timezone(timedelta(hours=5, minutes=30))
        created = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=ist)
        job = make_job("tz", created_at=created, updated_at=created, scheduled_for=T0)
        store.create_job(job)
        got = store.get_job("tz")
        assert got is not None
        assert got.created_at == created
        assert got.scheduled_for == T0
        for value in (got.created_at, got.updated_at, got.scheduled_for):
            assert value is not None
            assert value.utcoffset() is not None

    def test_json_result_round_trip(self, store: JobStore) -> None:
        result = {
            "text": UNICODE,
            "nested": {"list": [1, 2.5, None, True, False, "x"], "deep": {"deeper": {"k": []}}},
            "empty": {},
            "big": 2**53,
        }
        store.create_job(make_job("res"))
        assert store.mark_started("res", 1, "w")
        assert store.mark_succeeded("res", 1, result)
        got = store.get_job("res")
        assert got is not None
        assert got.result == result
        assert got.state is JobState.SUCCEEDED

    def test_scalar_and_null_results(self, store: JobStore) -> None:
        for job_id, result in [("s", "just text"), ("n", 42), ("l", [1, "é"]), ("none", None)]:
            store.create_job(make_job(job_id, state=JobState.STARTED, attempts=1))
            assert store.mark_succeeded(job_id, 1, result)
            got = store.get_job(job_id)
            assert got is not None
            assert got.result == result

    # -- transitions ----------------------------------------------------------------
    @pytest.mark.parametrize(("source", "target"), ALL_PAIRS, ids=str)
    def test_every_transition_matches_apply_event(
        self, store: JobStore, source: JobState, target: JobState
    ) -> None:
        job = store.create_job(make_job("t", state=source, attempts=1, result={"old": 1}))
        event = full_event("t", target, attempt=1)
        expected = apply_event(job, event)
        applied = store.apply_events([event])
        assert applied == (1 if target in TRANSITIONS[source] else 0)
        assert (expected is not None) == bool(applied)
        assert store.get_job("t") == (expected if expected is not None else job)

    @pytest.mark.parametrize(("source", "target"), NAMED_PAIRS, ids=str)
    def test_named_transition_methods(
        self, store: JobStore, source: JobState, target: JobState
    ) -> None:
        store.create_job(make_job("m", state=source, attempts=2))
        allowed = target in TRANSITIONS[source]
        assert _call_named(store, "m", target, attempt=2) is allowed
        got = store.get_job("m")
        assert got is not None
        assert got.state is (target if allowed else source)

    def test_stale_attempt_is_refused(self, store: JobStore) -> None:
        store.create_job(make_job("s", state=JobState.STARTED, attempts=3))
        failure = Failure("late", "TimeoutError", at=T0)
        assert not store.mark_succeeded("s", 2, "old")
        assert not store.mark_failed("s", 1, failure)
        assert not store.mark_retrying("s", 2, failure)
        assert not store.mark_started("s", 2, "old-worker")
        got = store.get_job("s")
        assert got is not None
        assert (got.state, got.attempts, got.result) == (JobState.STARTED, 3, None)
        assert store.mark_succeeded("s", 3, "current")
        got = store.get_job("s")
        assert got is not None
        assert (got.state, got.result) == (JobState.SUCCEEDED, "current")

    def test_newer_attempt_and_untied_events_apply(self, store: JobStore) -> None:
        store.create_job(make_job("r", state=JobState.STARTED, attempts=1))
        # redelivery after a crash: the next attempt starts on another worker
        assert store.mark_started("r", 2, "w2")
        got = store.get_job("r")
        assert got is not None
        assert (got.attempts, got.worker) == (2, "w2")
        # an event of attempt 1 flushed late cannot move it back
        assert not store.mark_retrying("r", 1, Failure("old", "E"))
        # an event from a later attempt than known is accepted
        assert store.mark_retrying("r", 5, Failure("new", "E"))
        # attempt 0 is not tied to an attempt
        assert store.apply_events([JobEvent("r", JobState.CANCELLED, T0, attempt=0)]) == 1
        got = store.get_job("r")
        assert got is not None
        assert (got.state, got.attempts, got.error) == (JobState.CANCELLED, 2, "new")

    def test_full_lifecycle_with_named_methods(self, store: JobStore) -> None:
        store.create_job(make_job("life", state=JobState.SCHEDULED))
        at = T0 + timedelta(seconds=1)
        assert store.mark_queued("life", at)
        assert store.mark_started("life", 1, "w1", at)
        assert store.mark_retrying("life", 1, Failure("boom", "OSError", "tb", at))
        assert store.mark_queued("life", at)
        assert store.mark_started("life", 2, "w2", at)
        assert store.mark_succeeded("life", 2, {"ok": True}, at)
        assert not store.mark_cancelled("life", at)
        got = store.get_job("life")
        assert got is not None
        assert got.state is JobState.SUCCEEDED
        assert (got.attempts, got.worker, got.result) == (2, "w2", {"ok": True})
        assert (got.error, got.error_type, got.traceback) == (None, None, None)
        assert got.finished_at == at
        assert got.updated_at == at

    def test_apply_events_batch_counts_and_order(self, store: JobStore) -> None:
        jobs = {
            "a": store.create_job(make_job("a", state=JobState.QUEUED)),
            "b": store.create_job(make_job("b", state=JobState.SCHEDULED)),
            "c": store.create_job(make_job("c", state=JobState.SUCCEEDED)),
        }
        events = [
            full_event("a", JobState.STARTED, 1),
            full_event("a", JobState.SUCCEEDED, 1),
            full_event("b", JobState.STARTED, 1),  # refused: SCHEDULED -> STARTED
            full_event("c", JobState.CANCELLED, 0),  # refused: final
            full_event("missing", JobState.STARTED, 1),  # no such job
            full_event("b", JobState.QUEUED, 0),
            full_event("a", JobState.FAILED, 1),  # refused: already final in this batch
        ]
        assert store.apply_events(events) == 3
        for job_id, job in jobs.items():
            expected = job
            for event in events:
                if event.job_id == job_id:
                    expected = apply_event(expected, event) or expected
            assert store.get_job(job_id) == expected
        assert store.get_job("missing") is None

    def test_apply_events_empty_batch(self, store: JobStore) -> None:
        assert store.apply_events([]) == 0

    # -- API keys -------------------------------------------------------------------
    def test_api_keys(self, store: JobStore) -> None:
        late = ApiKey("k2", "ci", "hash-2", ("jobs:read",), T0 + timedelta(days=1), prefix="cv_b")
        early = ApiKey("k1", UNICODE, "hash-1", ("jobs:read", "jobs:write"), T0, prefix="cv_a")
        store.add_api_key(late)
        store.add_api_key(early)
        assert store.list_api_keys() == [early, late]
        assert store.find_api_key("hash-1") == early
        assert store.find_api_key("unknown") is None
        revoked_at = T0 + timedelta(days=2)
        assert store.revoke_api_key("k1", revoked_at)
        assert not store.revoke_api_key("k1", revoked_at + timedelta(days=1))
        assert not store.revoke_api_key("no-such-key", revoked_at)
        assert store.find_api_key("hash-1") is None
        assert store.find_api_key("hash-2") == late
        keys = store.list_api_keys()
        assert [k.id for k in keys] == ["k1", "k2"]
        assert keys[0].revoked_at == revoked_at
        assert keys[0].scopes == ("jobs:read", "jobs:write")

    def test_api_key_without_scopes_or_prefix(self, store: JobStore) -> None:
        key = ApiKey("k", "bare", "h", (), T0)
        store.add_api_key(key)
        assert store.find_api_key("h") == key

    # -- lifecycle ------------------------------------------------------------------
    def test_migrate_is_idempotent(self, store: JobStore) -> None:
        store.migrate()
        store.migrate()
        assert store.is_migrated()
        store.ping()

    def test_is_a_job_store(self, store: JobStore) -> None:
        assert isinstance(store, JobStore)


class SqlStoreContract:
    """What only the SQL store does. Needs ``fresh_url``: the URL of an empty database."""

    @pytest.fixture
    def sql_store(self, fresh_url: str) -> Iterator[SqlStore]:
        store = SqlStore(fresh_url)
        store.migrate()
        yield store
        store.close()

    def test_fresh_database_is_not_migrated_until_migrate(self, fresh_url: str) -> None:
        store = SqlStore(fresh_url)
        try:
            store.ping()
            assert not store.is_migrated()
            with pytest.raises(StoreError):
                store.get_job("x")
            store.migrate()
            assert store.is_migrated()
            store.migrate()
            assert store.is_migrated()
        finally:
            store.close()

    def test_migration_creates_exactly_the_schema(self, sql_store: SqlStore) -> None:
        with sql_store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
        assert diff == []

    def test_concurrent_migrate_from_many_processes(self, fresh_url: str) -> None:
        code = (
            "import sys\n"
            "from conveyor.store.sql import SqlStore\n"
            "store = SqlStore(sys.argv[1])\n"
            "store.migrate()\n"
            "store.close()\n"
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, fresh_url],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outcomes = [(p.communicate(timeout=60), p.returncode) for p in procs]
        for (_out, err), code_ in outcomes:
            assert code_ == 0, err
        store = SqlStore(fresh_url)
        try:
            assert store.is_migrated()
        finally:
            store.close()

    def test_datetimes_come_back_as_utc(self, sql_store: SqlStore) -> None:
        ist = timezone(timedelta(hours=5, minutes=30))
        created = datetime(2024, 1, 1, 9, 0, tzinfo=ist)
        sql_store.create_job(make_job("utc", created_at=created, updated_at=created))
        sql_store.mark_started("utc", 1, "w", at=datetime(2024, 1, 1, 4, 0, tzinfo=ist))
        got = sql_store.get_job("utc")
        assert got is not None
        assert got.created_at == created
        assert got.created_at.utcoffset() == timedelta(0)
        assert got.started_at == datetime(2023, 12, 31, 22, 30, tzinfo=UTC)
        assert got.started_at is not None
        assert got.started_at.utcoffset() == timedelta(0)

    def test_batch_is_one_transaction(self, sql_store: SqlStore) -> None:
        sql_store.create_job(make_job("x", state=JobState.QUEUED))
        sql_store.create_job(make_job("y", state=JobState.STARTED, attempts=1))
        bad = JobEvent("y", JobState.SUCCEEDED, T0, attempt=1, result=object())
        with pytest.raises(StoreError):
            sql_store.apply_events([JobEvent("x", JobState.STARTED, T0, attempt=1), bad])
        x = sql_store.get_job("x")
        assert x is not None
        assert x.state is JobState.QUEUED

    def test_two_stores_share_the_database(self, sql_store: SqlStore, fresh_url: str) -> None:
        other = SqlStore(fresh_url)
        try:
            other.create_job(make_job("shared"))
            assert sql_store.mark_started("shared", 1, "w")
            got = other.get_job("shared")
            assert got is not None
            assert got.state is JobState.STARTED
        finally:
            other.close()

    def test_usable_after_fork(self, sql_store: SqlStore) -> None:
        sql_store.create_job(make_job("parent"))
        assert sql_store.get_job("parent") is not None  # the pool now holds a connection
        with _forked() as pid:
            if pid == 0:
                _child_uses_store(sql_store)
        assert sql_store.get_job("from-child") is not None
        assert sql_store.mark_started("parent", 1, "w")

    def test_api_key_hash_is_unique(self, sql_store: SqlStore) -> None:
        sql_store.add_api_key(ApiKey("k1", "one", "same-hash", (), T0))
        with pytest.raises(StoreError):
            sql_store.add_api_key(ApiKey("k2", "two", "same-hash", (), T0))
        assert [k.id for k in sql_store.list_api_keys()] == ["k1"]

    def test_add_api_key_with_same_id_replaces(self, sql_store: SqlStore) -> None:
        sql_store.add_api_key(ApiKey("k1", "one", "h1", (), T0))
        replacement = ApiKey("k1", "renamed", "h2", ("admin",), T0)
        sql_store.add_api_key(replacement)
        assert sql_store.list_api_keys() == [replacement]


# -- helpers -------------------------------------------------------------------------
def _matches(job: Job, flt: JobFilter) -> bool:
    return (
        (flt.state is None or job.state is flt.state)
        and (flt.task is None or job.task == flt.task)
        and (flt.queue is None or job.queue == flt.queue)
    )


def _call_named(store: JobStore, job_id: str, target: JobState, attempt: int) -> bool:
    failure = Failure("boom", "RuntimeError", "tb", at=T0)
    calls = {
        JobState.QUEUED: lambda: store.mark_queued(job_id, T0),
        JobState.STARTED: lambda: store.mark_started(job_id, attempt, "w", T0),
        JobState.SUCCEEDED: lambda: store.mark_succeeded(job_id, attempt, [1], T0),
        JobState.RETRYING: lambda: store.mark_retrying(job_id, attempt, failure),
        JobState.FAILED: lambda: store.mark_failed(job_id, attempt, failure),
        JobState.DEAD: lambda: store.mark_dead(job_id, attempt, failure),
        JobState.CANCELLED: lambda: store.mark_cancelled(job_id, T0),
    }
    return calls[target]()


@contextmanager
def _forked() -> Iterator[int]:
    """Fork; yields the pid (0 in the child). The parent waits for a zero exit status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "process is multi-threaded"
        pid = os.fork()
    yield pid
    if pid != 0:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the forked child failed"


def _child_uses_store(store: SqlStore) -> None:
    """Runs in a forked child: must use fresh connections, then leave without cleanup."""
    code = 1
    try:
        pool = store.engine.pool
        fresh_pool = isinstance(pool, QueuePool) and pool.checkedin() == 0
        store.create_job(make_job("from-child"))
        code = 0 if fresh_pool and store.get_job("from-child") is not None else 1
    finally:
        os._exit(code)
