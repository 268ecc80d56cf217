"""Cross-cutting behaviour around every task run, declared in ONE list.

Each hook sees the same four moments of a run; the task runner only walks the
list. Add behaviour by adding a hook, not a branch in the runner.
"""

from __future__ import annotations

from conveyor.hooks.base import Hook, RunContext
from conveyor.hooks.callback import CallbackHook
from conveyor.hooks.deadletter import DeadLetterRetentionHook
from conveyor.hooks.flow import SLEEP_BELOW, FlowHook
from conveyor.hooks.gate import StoreGateHook
from conveyor.hooks.logging import LogHook
from conveyor.hooks.record import RecordHook
from conveyor.hooks.workflow import WorkflowHook
from conveyor.limiter import open_limiter
from conveyor.recorder import Recorder
from conveyor.settings import Settings
from conveyor.store.base import JobStore


def default_hooks(
    recorder: Recorder,
    store: JobStore | None = None,
    settings: Settings | None = None,
    *,
    inline: bool = False,
) -> list[Hook]:
    """The hooks every worker runs, in order (recording first: later hooks read the store)."""
    hooks: list[Hook] = [RecordHook(recorder), LogHook(), WorkflowHook(recorder)]
    if store is not None:
        hooks.append(StoreGateHook(store))
    if store is not None and settings is not None:
        hooks.append(DeadLetterRetentionHook(store, settings))
        hooks.append(CallbackHook(store, settings, inline=inline))
    if store is not None and settings is not None and not settings.broker_url.startswith("memory"):
        # flow control needs a real broker to put jobs back (memory:// is inline/test mode)
        limiter = open_limiter(settings, store)
        lease = settings.concurrency_lease
        hooks.append(FlowHook(store, limiter, lease, max_sleep=SLEEP_BELOW))
    return hooks


__all__ = [
    "CallbackHook",
    "DeadLetterRetentionHook",
    "FlowHook",
    "Hook",
    "LogHook",
    "RecordHook",
    "RunContext",
    "StoreGateHook",
    "WorkflowHook",
    "default_hooks",
]
