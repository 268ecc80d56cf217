"""Store operations for bulk submits and workflows (a protocol; mixins implement it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from conveyor.jobs import Job
from conveyor.workflow_model import Workflow


class WorkflowStore(Protocol):
    def create_jobs(self, jobs: Sequence[Job]) -> None:
        """Insert many jobs in one transaction (all or none); DuplicateJob on a taken id."""
        ...

    def create_workflow(self, workflow: Workflow) -> Workflow: ...
    def get_workflow(self, workflow_id: str) -> Workflow | None: ...
    def workflow_jobs(self, workflow_id: str) -> list[Job]:
        """The jobs linked to the workflow (any order)."""
        ...

    def advance_workflow(self, workflow: Workflow, new_jobs: Sequence[Job]) -> bool:
        """Write ``workflow`` (its version + 1) and insert ``new_jobs``, in one transaction,
        only if the stored version is still ``workflow.version``; False when it is not."""
        ...
