"""Pruning conveyor's own job history (``maintenance.prune_jobs``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from conveyor.jobs import FINAL_STATES, JobState

#: Only finished jobs are pruned unless other states are asked for explicitly.
PRUNABLE_STATES = FINAL_STATES


class JobPruning(Protocol):
    def prune_jobs(self, before: datetime, states: Iterable[JobState] = PRUNABLE_STATES) -> int:
        """Delete jobs in ``states`` last updated before ``before``; returns how many."""
        ...
