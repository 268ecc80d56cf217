"""The hook interface and the context a hook sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conveyor.gate import RUN, Gate
from conveyor.hooks.lookup import JobLookup
from conveyor.jobs import Job, JobState
from conveyor.store.base import Failure, JobStore


@dataclass(frozen=True, slots=True)
class RunContext:
    job_id: str
    task: str
    queue: str
    attempt: int
    worker: str | None
    workflow_id: str | None = None
    #: the run's shared job row (read at most once); None outside a worker run
    lookup: JobLookup | None = field(default=None, compare=False)

    def job(self, store: JobStore) -> Job | None:
        """The job of this run: the shared row when there is one, else read from ``store``."""
        if self.lookup is not None:
            return self.lookup.get()
        return store.get_job(self.job_id)


class Hook:
    """Override any of the moments; the defaults do nothing (and ``before_run`` runs)."""

    def before_run(self, ctx: RunContext) -> Gate:
        """Just before a run: return ``Gate.skip(reason)`` or ``Gate.defer(...)`` to stop it."""
        return RUN

    def on_skip(self, ctx: RunContext, gate: Gate) -> None:
        """A run was skipped or deferred by ``gate`` (the task did not run)."""
        return None

    def on_start(self, ctx: RunContext) -> None:
        return None

    def on_success(self, ctx: RunContext, result: Any) -> None:
        return None

    def on_retry(self, ctx: RunContext, failure: Failure, delay: float | None) -> None:
        return None

    def on_failure(self, ctx: RunContext, failure: Failure, state: JobState) -> None:
        return None
