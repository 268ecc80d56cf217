"""The decision a hook takes just before a job runs: run it, skip it, or defer it.

A hook's ``before_run`` returns a :class:`Gate`. The first hook that does not
say *run* wins: *skip* acknowledges the message without running the task (a
cancelled or already finished job), *defer* puts the message back on the
broker to be tried again after ``countdown`` seconds without counting an attempt
(flow control: rate limits, concurrency limits).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class GateAction(enum.StrEnum):
    RUN = "run"
    SKIP = "skip"
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class Gate:
    action: GateAction = GateAction.RUN
    reason: str = ""
    countdown: float = 0.0

    @classmethod
    def run(cls) -> Gate:
        return RUN

    @classmethod
    def skip(cls, reason: str) -> Gate:
        return cls(GateAction.SKIP, reason)

    @classmethod
    def defer(cls, countdown: float, reason: str) -> Gate:
        if countdown < 0:
            raise ValueError("countdown must be >= 0")
        return cls(GateAction.DEFER, reason, countdown)

    @property
    def runs(self) -> bool:
        return self.action is GateAction.RUN


RUN = Gate()


def first_refusal(gates: Iterable[Gate]) -> Gate:
    """The first gate that does not run, or RUN when every hook agrees to run."""
    for gate in gates:
        if not gate.runs:
            return gate
    return RUN
