"""Cross-cutting behaviour around every task run, declared in ONE list.

Each hook sees the same four moments of a run; the task runner only walks the
list. Add behaviour by adding a hook, not a branch in the runner.
"""

from __future__ import annotations

from conveyor.hooks.base import Hook, RunContext
from conveyor.hooks.logging import LogHook
from conveyor.hooks.record import RecordHook
from conveyor.hooks.workflow import WorkflowHook
from conveyor.recorder import Recorder


def default_hooks(recorder: Recorder) -> list[Hook]:
    """The hooks every worker runs, in order."""
    return [RecordHook(recorder), LogHook(), WorkflowHook(recorder)]


__all__ = ["Hook", "LogHook", "RecordHook", "RunContext", "WorkflowHook", "default_hooks"]
