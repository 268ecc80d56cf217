"""Contract of the bulk-insert, workflow and progress store operations (every store twin).

Subclass ``WorkflowStoreContract`` and provide a ``store`` fixture: a migrated, empty store.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from conveyor.jobs import JobEvent, JobState
from conveyor.store.base import DuplicateJob, JobFilter, JobStore
from conveyor.workflow_model import Workflow, WorkflowState
from tests.store_contract import T0, make_job


def make_workflow(workflow_id: str = "w1") -> Workflow:
    tree = {"type": "task", "loc": [], "task": "t", "job_id": None}
    return Workflow(
        workflow_id, WorkflowState.RUNNING, {"task": "t"}, tree, created_at=T0, updated_at=T0
    )


class WorkflowStoreContract:
    def test_create_jobs_inserts_all(self, store: JobStore) -> None:
        store.create_jobs([make_job(f"b{i:04d}") for i in range(1200)])
        assert len(store.list_jobs(JobFilter(), 2000).items) == 1200
        store.create_jobs([])

    def test_create_jobs_is_all_or_nothing(self, store: JobStore) -> None:
        store.create_job(make_job("taken"))
        with pytest.raises(DuplicateJob):
            store.create_jobs([make_job("new"), make_job("taken")])
        assert store.get_job("new") is None

    def test_jobs_created_in_bulk_read_back_as_written(self, store: JobStore) -> None:
        """Every column a bulk insert writes (COPY on PostgreSQL) reads back unchanged,
        text that needs escaping in COPY's format included, and equals a one-by-one insert."""
        tricky = "tab\there\nnew line \\N back\\slash é ☃ 'quote' \"dq\" \\."
        values = {
            "task": "reports.build",
            "queue": "email",
            "args": (1, 2.5, tricky, None, [True, {"k": tricky}]),
            "kwargs": {"text": tricky, "nested": {"list": [1, 2]}, "none": None},
            "priority": 7,
            "scheduled_for": T0 + timedelta(minutes=3),
            "callback_url": "https://example.com/hook?a=1&b=\\N",
            "retry": {"max_retries": 2, "base_delay": 0.5},
            "replay_of": "dead-1",
            "rate_limit": "5/s",
            "workflow_id": "wf-1",
            "progress": {"done": 1, "total": 3, "message": tricky},
        }
        bulk = [make_job("bulk-full", **values), make_job("bulk-bare", state=JobState.SCHEDULED)]
        store.create_jobs(bulk)
        single = make_job("single-full", **values)
        store.create_job(single)
        assert [store.get_job(job.id) for job in bulk] == bulk
        read_single = store.get_job("single-full")
        assert read_single is not None
        assert dataclasses.replace(read_single, id="bulk-full") == store.get_job("bulk-full")

    def test_progress_is_stored_without_changing_state(self, store: JobStore) -> None:
        store.create_job(make_job("p", state=JobState.STARTED, attempts=1))
        event = JobEvent.progress_report("p", 3, 10, "rows")
        assert store.apply_events([event]) == 1
        job = store.get_job("p")
        assert job is not None and job.state is JobState.STARTED and job.attempts == 1
        assert job.progress is not None
        assert {k: job.progress[k] for k in ("done", "total", "message")} == {
            "done": 3,
            "total": 10,
            "message": "rows",
        }
        assert store.mark_succeeded("p", 1, "ok")
        assert store.apply_events([JobEvent.progress_report("p", 4, 10, None)]) == 0
        final = store.get_job("p")
        assert final is not None and final.progress is not None and final.progress["done"] == 3

    def test_workflow_round_trip_and_jobs(self, store: JobStore) -> None:
        workflow = store.create_workflow(make_workflow())
        assert store.get_workflow("w1") == workflow
        assert store.get_workflow("nope") is None
        with pytest.raises(DuplicateJob):
            store.create_workflow(make_workflow())
        store.create_job(make_job("other"))
        assert store.workflow_jobs("w1") == []

    def test_advance_is_optimistic(self, store: JobStore) -> None:
        workflow = store.create_workflow(make_workflow())
        step = make_job("s1", workflow_id="w1")
        tree = {**workflow.tree, "job_id": "s1"}
        assert store.advance_workflow(workflow.evolve(tree=tree), [step])
        stale = workflow.evolve(state=WorkflowState.FAILED)
        assert not store.advance_workflow(stale, [make_job("s2", workflow_id="w1")])
        current = store.get_workflow("w1")
        assert current is not None
        assert current.version == 1 and current.tree["job_id"] == "s1"
        assert current.state is WorkflowState.RUNNING
        assert [job.id for job in store.workflow_jobs("w1")] == ["s1"]
        done = current.evolve(state=WorkflowState.SUCCEEDED, finished_at=T0, error=None)
        assert store.advance_workflow(done, [])
        final = store.get_workflow("w1")
        assert final is not None and final.state is WorkflowState.SUCCEEDED
        assert final.finished_at == T0 and final.version == 2
