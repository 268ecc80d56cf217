"""Contract of the observability store operations (job events, counts, histograms, callbacks).

Not collected by itself: subclass :class:`ObservabilityContract` where a ``store``
fixture (migrated, empty JobStore) exists.
"""

from __future__ import annotations

from datetime import timedelta

from conveyor.jobs import JobEvent, JobState
from conveyor.store.base import Failure, JobStore
from conveyor.store.observability import CallbackDelivery, EventFilter
from tests.store_contract import T0, make_job


def _run(store: JobStore, job_id: str, outcome: JobState, seconds: float) -> None:
    """Start ``job_id`` 10 s after T0 and succeed it ``seconds`` later."""
    assert outcome is JobState.SUCCEEDED
    start = T0 + timedelta(seconds=10)
    assert store.mark_started(job_id, 1, "w1", at=start)
    assert store.mark_succeeded(job_id, 1, {"ok": True}, at=start + timedelta(seconds=seconds))


class ObservabilityContract:
    def test_creating_and_changing_a_job_appends_events(self, store: JobStore) -> None:
        assert store.last_job_event_id() == 0
        store.create_job(make_job("e1", task="a.one", queue="email"))
        assert store.mark_started("e1", 1, "w1", at=T0 + timedelta(seconds=1))
        assert not store.mark_queued("e1")  # refused: no event
        assert store.mark_succeeded("e1", 1, 42, at=T0 + timedelta(seconds=2))
        events = store.list_job_events(0, EventFilter(), 100)
        assert [e.state for e in events] == [JobState.QUEUED, JobState.STARTED, JobState.SUCCEEDED]
        assert all(e.job_id == "e1" and e.task == "a.one" and e.queue == "email" for e in events)
        assert [e.id for e in events] == sorted(e.id for e in events)
        assert events[1].data["worker"] == "w1"
        assert events[1].data["attempt"] == 1
        assert store.last_job_event_id() == events[-1].id

    def test_jobs_created_in_bulk_start_their_history_like_one_by_one(
        self, store: JobStore
    ) -> None:
        store.create_jobs([make_job("b1", task="a.one", queue="email"), make_job("b2")])
        events = store.list_job_events(0, EventFilter(), 100)
        assert [(e.job_id, e.state) for e in events] == [
            ("b1", JobState.QUEUED),
            ("b2", JobState.QUEUED),
        ]
        assert events[0].task == "a.one" and events[0].queue == "email"

    def test_events_after_an_id_and_filtered(self, store: JobStore) -> None:
        store.create_job(make_job("f1", task="a.one", queue="email"))
        store.create_job(make_job("f2", task="a.two", queue="default"))
        first = store.last_job_event_id()
        store.apply_events(
            [
                JobEvent("f1", JobState.STARTED, T0, attempt=1),
                JobEvent("f2", JobState.STARTED, T0, attempt=1),
            ]
        )
        after = store.list_job_events(first, EventFilter(), 100)
        assert [(e.job_id, e.state) for e in after] == [
            ("f1", JobState.STARTED),
            ("f2", JobState.STARTED),
        ]
        assert [e.job_id for e in store.list_job_events(0, EventFilter(task="a.two"), 9)] == [
            "f2",
            "f2",
        ]
        assert len(store.list_job_events(0, EventFilter(queue="email"), 9)) == 2
        assert len(store.list_job_events(0, EventFilter(job_id="f1"), 9)) == 2
        assert len(store.list_job_events(0, EventFilter(), 1)) == 1

    def test_prune_removes_only_old_events(self, store: JobStore) -> None:
        store.create_job(make_job("p1"))
        store.mark_started("p1", 1, "w", at=T0 + timedelta(hours=1))
        assert store.prune_job_events(T0 + timedelta(minutes=30)) == 1
        assert [e.state for e in store.list_job_events(0, EventFilter(), 9)] == [JobState.STARTED]

    def test_job_counts_and_retries(self, store: JobStore) -> None:
        for n in range(3):
            store.create_job(make_job(f"ok{n}", task="t.ok"))
            _run(store, f"ok{n}", JobState.SUCCEEDED, 1.5)
        store.create_job(make_job("bad", task="t.bad", queue="email"))
        assert store.mark_started("bad", 1, "w", at=T0)
        assert store.mark_retrying("bad", 1, Failure("x", "E", at=T0))
        store.create_job(make_job("dead", task="t.bad", queue="email"))
        assert store.mark_started("dead", 1, "w", at=T0)
        assert store.mark_retrying("dead", 1, Failure("x", "E", at=T0))
        assert store.mark_started("dead", 2, "w", at=T0 + timedelta(seconds=5))
        assert store.mark_dead("dead", 2, Failure("x", "E", at=T0 + timedelta(seconds=6)))
        counts = {(c.task, c.queue, c.state): c for c in store.job_counts()}
        ok = counts[("t.ok", "default", JobState.SUCCEEDED)]
        assert (ok.count, ok.retries) == (3, 0)
        assert ok.last_activity == T0 + timedelta(seconds=11.5)
        retrying = counts[("t.bad", "email", JobState.RETRYING)]
        assert (retrying.count, retrying.retries) == (1, 1)
        dead = counts[("t.bad", "email", JobState.DEAD)]
        assert (dead.count, dead.retries) == (1, 1)
        assert dead.last_activity == T0 + timedelta(seconds=6)
        assert len(counts) == 3

    def test_duration_histograms(self, store: JobStore) -> None:
        for n, seconds in enumerate([0.5, 2.0, 7.0]):
            store.create_job(make_job(f"h{n}", task="t.h"))
            _run(store, f"h{n}", JobState.SUCCEEDED, seconds)
        store.create_job(make_job("running", task="t.h"))
        store.mark_started("running", 1, "w", at=T0 + timedelta(seconds=3))
        (run,) = store.duration_histograms("run", [1.0, 5.0, 10.0])
        assert (run.task, run.queue, run.count) == ("t.h", "default", 3)
        assert run.buckets == (1, 2, 3)
        assert abs(run.total - 9.5) < 1e-3
        (wait,) = store.duration_histograms("wait", [5.0, 10.5])
        assert wait.count == 4  # every first attempt that started, running ones included
        assert wait.buckets == (1, 4)
        assert abs(wait.total - 33.0) < 1e-3

    def test_callback_deliveries(self, store: JobStore) -> None:
        store.create_job(make_job("cb", callback_url="http://example.test/hook"))
        job = store.get_job("cb")
        assert job is not None and job.callback_url == "http://example.test/hook"
        first = CallbackDelivery("cb", 1, "http://example.test/hook", T0, False, 500, "HTTP 500")
        second = CallbackDelivery("cb", 2, "http://example.test/hook", T0, True, 200)
        store.add_callback_delivery(first)
        store.add_callback_delivery(second)
        store.add_callback_delivery(CallbackDelivery("other", 1, "http://x.test", T0, True, 204))
        assert store.list_callback_deliveries("cb") == [first, second]
        assert store.list_callback_deliveries("none") == []
