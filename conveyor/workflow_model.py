"""Workflows as values: the record, its states, and the step tree stored with it.

The tree is plain JSON (dicts and lists) so the store keeps it as one column.
Every node has ``type`` (``task``, ``chain``, ``group``, ``chord``) and
``loc`` (where it sits in the submitted spec); task nodes get ``job_id`` once
their job exists.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from conveyor.jobs import utcnow

Node = dict[str, Any]


class WorkflowState(enum.StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self is not WorkflowState.RUNNING


def new_workflow_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Workflow:
    """A workflow run. ``version`` increases with every write (optimistic locking)."""

    id: str
    state: WorkflowState
    spec: Mapping[str, Any]
    tree: Node
    version: int = 0
    error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None

    def evolve(self, **changes: Any) -> Workflow:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Workflow:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in row.items() if k in names}
        values["state"] = WorkflowState(values["state"])
        for key in ("created_at", "updated_at", "finished_at"):
            value = values.get(key)
            if isinstance(value, datetime) and value.tzinfo is None:
                values[key] = value.replace(tzinfo=UTC)
        return cls(**values)

    def job_ids(self) -> list[str]:
        return [n["job_id"] for n in task_nodes(self.tree) if n.get("job_id")]


def children(node: Node) -> Iterator[Node]:
    """The direct sub-steps of ``node`` (chord: header, body, then on_error)."""
    kind = node["type"]
    if kind in ("chain", "group"):
        yield from node["steps"]
    elif kind == "chord":
        yield from node["header"]
        yield node["body"]
        if node.get("on_error") is not None:
            yield node["on_error"]


def task_nodes(node: Node) -> Iterator[Node]:
    """Every task step under ``node``, depth first."""
    if node["type"] == "task":
        yield node
        return
    for child in children(node):
        yield from task_nodes(child)
