"""Test your own tasks without any server.

``InlineConveyor`` wires the in-memory job store to a Celery app whose submits
run in-process, through the same validation, retry policy, hooks and recording
as a real worker::

    from conveyor.testing import InlineConveyor

    def test_welcome_email(conveyor_inline: InlineConveyor) -> None:
        job = conveyor_inline.submit("myapp.send_welcome", user_id=1)
        assert job.state is JobState.SUCCEEDED
        assert job.result == {"sent": True}

Differences from a real worker, by design: retries run immediately (Celery's
eager mode ignores countdowns), and nothing crosses a broker.
"""

from __future__ import annotations

from typing import Any

from conveyor.engine import create_app, import_task_modules
from conveyor.hooks.workflow import attach_submitter
from conveyor.jobs import Job
from conveyor.runtime import install_runtime
from conveyor.settings import Settings, load_settings
from conveyor.store.base import JobStore
from conveyor.store.memory import MemoryStore
from conveyor.submit import SubmitRequest, Submitter
from conveyor.task import TaskRegistry, registry

__all__ = ["InlineConveyor", "MemoryStore", "inline_settings"]


def inline_settings(**overrides: Any) -> Settings:
    """Settings that need no broker, database or result backend."""
    values: dict[str, Any] = {
        "broker_url": "memory://",
        "database_url": "memory://",
        "result_backend": "cache+memory://",
    }
    values.update(overrides)
    return load_settings(**values)


class InlineConveyor:
    """A whole conveyor in one process: submit runs the job before returning."""

    def __init__(
        self,
        settings: Settings | None = None,
        store: JobStore | None = None,
        tasks: TaskRegistry = registry,
    ) -> None:
        self.settings = settings or inline_settings()
        self.store = store if store is not None else MemoryStore()
        import_task_modules(self.settings)
        self.app = create_app(self.settings, tasks)
        install_runtime(self.app, self.settings, self.store, synchronous=True)
        self.submitter = Submitter(self.settings, self.store, self.app, tasks, inline=True)
        attach_submitter(self.app, self.submitter)  # workflow steps run inline too

    def submit(self, task: str, *args: Any, **kwargs: Any) -> Job:
        """Submit and run ``task``; returns the job as recorded afterwards."""
        return self.submitter.submit(SubmitRequest(task=task, args=args, kwargs=kwargs))

    def get(self, job_id: str) -> Job | None:
        return self.store.get_job(job_id)
