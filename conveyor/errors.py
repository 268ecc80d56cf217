"""Exceptions that are part of conveyor's public API."""

from __future__ import annotations

from typing import Any


class ConveyorError(Exception):
    """Base class of conveyor's own errors."""


class TemporaryError(ConveyorError):
    """Raise from a task when trying again later may succeed (timeouts, 5xx, 429)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ConveyorError):
    """Raise from a task when trying again cannot help (4xx, invalid data): never retried."""


class TaskNotFound(ConveyorError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown task {name!r}")
        self.name = name


class ArgumentsInvalid(ConveyorError):
    """Task arguments failed validation; ``errors`` holds one entry per bad field."""

    def __init__(self, task: str, errors: list[dict[str, Any]]) -> None:
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())) or "?" for e in errors)
        super().__init__(f"invalid arguments for task {task!r}: {fields}")
        self.task = task
        self.errors = errors


class SubmitRefused(ConveyorError):
    """A submit was well-formed but cannot be accepted (bad queue, eta too far, ...)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BrokerUnavailable(ConveyorError):
    """The broker could not take the message; nothing was enqueued."""
