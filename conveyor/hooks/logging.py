"""Structured log lines with stable event names for every run."""

from __future__ import annotations

from typing import Any

import structlog

from conveyor.gate import Gate, GateAction
from conveyor.hooks.base import Hook, RunContext
from conveyor.jobs import JobState
from conveyor.store.base import Failure

log = structlog.get_logger("conveyor.worker")

_FINAL_EVENTS = {
    JobState.FAILED: "job_failed",
    JobState.DEAD: "job_dead",
    JobState.CANCELLED: "job_cancelled",
}


def _bound(ctx: RunContext) -> Any:
    return log.bind(job_id=ctx.job_id, task=ctx.task, queue=ctx.queue, attempt=ctx.attempt)


class LogHook(Hook):
    def on_start(self, ctx: RunContext) -> None:
        _bound(ctx).info("job_started", worker=ctx.worker)

    def on_success(self, ctx: RunContext, result: Any) -> None:
        _bound(ctx).info("job_succeeded")

    def on_retry(self, ctx: RunContext, failure: Failure, delay: float | None) -> None:
        _bound(ctx).warning(
            "job_retried",
            error_type=failure.error_type,
            error=failure.error,
            delay=delay,
            reason=failure.reason,
        )

    def on_skip(self, ctx: RunContext, gate: Gate) -> None:
        event = "job_deferred" if gate.action is GateAction.DEFER else "job_skipped"
        _bound(ctx).info(event, reason=gate.reason, countdown=gate.countdown or None)

    def on_failure(self, ctx: RunContext, failure: Failure, state: JobState) -> None:
        event = _FINAL_EVENTS.get(state, "job_failed")
        _bound(ctx).error(
            event, error_type=failure.error_type, error=failure.error, reason=failure.reason
        )
