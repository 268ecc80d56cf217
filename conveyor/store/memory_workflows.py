"""In-memory twin of the workflow store operations (mixed into MemoryStore)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from conveyor.jobs import Job
from conveyor.store.base import DuplicateJob
from conveyor.workflow_model import Workflow


class MemoryWorkflowMixin:
    _lock: threading.RLock
    _jobs: dict[str, Job]

    def _append_event(self, job: Job) -> None:
        raise NotImplementedError  # MemoryObservability's

    @property
    def _workflows(self) -> dict[str, Workflow]:
        found: dict[str, Workflow] | None = self.__dict__.get("_workflow_rows")
        if found is None:
            found = self.__dict__["_workflow_rows"] = {}
        return found

    def create_jobs(self, jobs: Sequence[Job]) -> None:
        with self._lock:
            ids = [job.id for job in jobs]
            taken = [i for i in ids if i in self._jobs]
            if taken or len(set(ids)) != len(ids):
                raise DuplicateJob(taken[0] if taken else "duplicate id in batch")
            for job in jobs:
                self._jobs[job.id] = job
                self._append_event(job)

    def create_workflow(self, workflow: Workflow) -> Workflow:
        with self._lock:
            if workflow.id in self._workflows:
                raise DuplicateJob(workflow.id)
            self._workflows[workflow.id] = workflow
            return workflow

    def get_workflow(self, workflow_id: str) -> Workflow | None:
        with self._lock:
            return self._workflows.get(workflow_id)

    def workflow_jobs(self, workflow_id: str) -> list[Job]:
        with self._lock:
            return [job for job in self._jobs.values() if job.workflow_id == workflow_id]

    def advance_workflow(self, workflow: Workflow, new_jobs: Sequence[Job]) -> bool:
        with self._lock:
            current = self._workflows.get(workflow.id)
            if current is None or current.version != workflow.version:
                return False
            self.create_jobs(new_jobs)
            self._workflows[workflow.id] = workflow.evolve(version=workflow.version + 1)
            return True
