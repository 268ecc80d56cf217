"""Whether and how a job can be cancelled (a pure decision on its state)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from conveyor.jobs import JobState


class CancelAction(enum.StrEnum):
    #: not running yet: mark it CANCELLED; the worker's gate skips it if it is delivered
    CANCEL = "cancel"
    #: running: mark it CANCELLED and kill the process running it
    TERMINATE = "terminate"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class CancelDecision:
    action: CancelAction
    code: str = ""
    message: str = ""


def decide_cancel(state: JobState, terminate: bool) -> CancelDecision:
    if state.is_final:
        return CancelDecision(
            CancelAction.REFUSE, "job_finished", f"the job is already {state.value}"
        )
    if state is JobState.STARTED:
        if terminate:
            return CancelDecision(CancelAction.TERMINATE)
        return CancelDecision(
            CancelAction.REFUSE,
            "job_running",
            "the job is running; cancelling it means killing the process that runs it, "
            'which may leave its work half done: send {"terminate": true} to do that',
        )
    return CancelDecision(CancelAction.CANCEL)
