"""Per-process worker state: the store connection, the recorder and the hook list.

Built lazily on first use in each process (and rebuilt after a fork), so a
prefork child never shares a database connection or a recorder thread with its
parent. Tests and inline mode install their own with ``install_runtime``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from celery import Celery

from conveyor.hooks import Hook, default_hooks
from conveyor.recorder import BatchRecorder, Recorder, SyncRecorder
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.store.factory import open_store


@dataclass
class Runtime:
    settings: Settings
    store: JobStore
    recorder: Recorder
    hooks: list[Hook] = field(default_factory=list)
    pid: int = field(default_factory=os.getpid)

    def close(self) -> None:
        self.recorder.close()


_lock = threading.Lock()


def install_runtime(
    app: Celery, settings: Settings, store: JobStore, *, synchronous: bool = False
) -> Runtime:
    """Attach a runtime to ``app`` for this process."""
    recorder: Recorder
    if synchronous:
        recorder = SyncRecorder(store)
    else:
        recorder = BatchRecorder(
            store,
            settings.record_batch_size,
            settings.record_flush_interval,
            writers=getattr(store, "parallel_writes", 1),
        )
    hooks = default_hooks(recorder, store, settings, inline=synchronous)
    runtime = Runtime(settings, store, recorder, hooks)
    app.conveyor_runtime = runtime
    return runtime


def runtime_for(app: Celery, *, synchronous: bool = False) -> Runtime:
    """This process's runtime for ``app``, created on first use.

    ``synchronous`` (only used when it is created) records without a background
    thread: the worker's main process uses it, as it forks pool children and a
    thread holding a lock at fork time would leave that lock held in the child.
    """
    runtime = _installed(app)
    if runtime is not None:
        return runtime
    with _lock:
        runtime = _installed(app)
        if runtime is not None:
            return runtime
        settings: Settings = app.conveyor_settings
        return install_runtime(app, settings, open_store(settings), synchronous=synchronous)


def _installed(app: Celery) -> Runtime | None:
    runtime = getattr(app, "conveyor_runtime", None)
    if isinstance(runtime, Runtime) and runtime.pid == os.getpid():
        return runtime
    return None


def flush_runtime(app: Celery) -> None:
    runtime = _installed(app)
    if runtime is not None:
        runtime.close()
