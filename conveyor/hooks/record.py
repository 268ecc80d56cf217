"""Record every state change of a run in the job store (batched)."""

from __future__ import annotations

from typing import Any

from conveyor.hooks.base import Hook, RunContext
from conveyor.jobs import JobEvent, JobState, utcnow
from conveyor.recorder import Recorder
from conveyor.store.base import Failure


class RecordHook(Hook):
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def on_start(self, ctx: RunContext) -> None:
        at = ctx.lookup.started_at if ctx.lookup is not None else None
        self.recorder.record(
            JobEvent(ctx.job_id, JobState.STARTED, at or utcnow(), ctx.attempt, ctx.worker)
        )

    def on_success(self, ctx: RunContext, result: Any) -> None:
        self.recorder.record(
            JobEvent(ctx.job_id, JobState.SUCCEEDED, attempt=ctx.attempt, result=result)
        )

    def _failure(self, ctx: RunContext, state: JobState, failure: Failure) -> None:
        self.recorder.record(
            JobEvent(
                ctx.job_id,
                state,
                failure.at,
                attempt=ctx.attempt,
                error=failure.error,
                error_type=failure.error_type,
                traceback=failure.traceback,
                reason=failure.reason,
            )
        )

    def on_retry(self, ctx: RunContext, failure: Failure, delay: float | None) -> None:
        self._failure(ctx, JobState.RETRYING, failure)

    def on_failure(self, ctx: RunContext, failure: Failure, state: JobState) -> None:
        self._failure(ctx, state, failure)
