"""Per-key concurrency: at most ``limit`` jobs with the same key value run at once.

``@task(concurrency=ConcurrencyLimit(key="user_id", limit=1))`` — the key names
one of the task's parameters; jobs with the same value share ``limit`` slots
across the whole cluster. A slot is a *lease* that expires unless the worker
running the job renews it, so a crashed worker cannot hold one forever.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_jsonable_python


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    key: str
    limit: int = 1
    #: share slots with other tasks using the same name (default: the task's own)
    name: str | None = None

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("a concurrency limit must be at least 1")
        if not self.key:
            raise ValueError("a concurrency limit needs the name of a parameter as key")

    def slot_key(self, task: str, values: Mapping[str, Any]) -> str:
        """The cluster-wide name of the slots for these argument values."""
        value = to_jsonable_python(values.get(self.key), fallback=repr)
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        return f"{self.name or task}:{self.key}={text}"[:300]


@dataclass(frozen=True, slots=True)
class Slot:
    """The decision of one acquire: run (a lease is held) or wait ``wait`` seconds."""

    acquired: bool
    wait: float = 0.0


def decide_slot(
    leases: Mapping[str, float], job_id: str, limit: int, now: float, retry_delay: float
) -> Slot:
    """May ``job_id`` take a slot, given the current ``leases`` (job id → expiry)?"""
    live = {job: expiry for job, expiry in leases.items() if expiry > now}
    if job_id in live or len(live) < limit:
        return Slot(True)
    soonest = min(live.values()) - now
    return Slot(False, max(0.05, min(retry_delay, soonest)))
