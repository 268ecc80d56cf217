"""Which queue a task goes to: explicit option, then the task's own queue, then routes."""

from __future__ import annotations

from fnmatch import fnmatchcase

from conveyor.settings import Settings
from conveyor.task import TaskSpec


def route_for(task_name: str, settings: Settings) -> str:
    """The queue from ``settings.routes`` (first matching glob), else the default queue."""
    for pattern, queue in settings.routes.items():
        if fnmatchcase(task_name, pattern):
            return queue
    return settings.default_queue


def resolve_queue(spec: TaskSpec, settings: Settings, requested: str | None = None) -> str:
    return requested or spec.queue or route_for(spec.name, settings)
