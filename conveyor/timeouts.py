"""Hard time limits: the pool child is killed, so the parent records the attempt.

Celery handles a hard time limit in the worker's main process
(``Request.on_timeout``), where the task's own request context is not
available. ``ConveyorRequest`` (conveyor/request.py, the ``Request`` class of every task)
hands what the failure handling needs — which attempt this was, the queue, the
worker — to ``ConveyorTask.on_failure`` through a context variable, and
``ConveyorTask`` records the attempt as failed with reason ``time_limit`` and
then follows the job's retry policy (re-publishing the message for a retry).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TimeoutInfo:
    """The request that hit its hard time limit, as seen by the worker's main process."""

    retries: int
    queue: str | None
    priority: int | None
    hostname: str | None
    limit: float


_current: contextvars.ContextVar[TimeoutInfo | None] = contextvars.ContextVar(
    "conveyor_timeout", default=None
)


def current_timeout() -> TimeoutInfo | None:
    """Set while Celery handles a hard time limit in the worker's main process."""
    return _current.get()


def timeout_info(request_dict: Any, delivery_info: Any, hostname: Any, limit: Any) -> TimeoutInfo:
    delivery = delivery_info if isinstance(delivery_info, dict) else {}
    values = request_dict if isinstance(request_dict, dict) else {}
    return TimeoutInfo(
        retries=int(values.get("retries") or 0),
        queue=delivery.get("routing_key"),
        priority=delivery.get("priority"),
        hostname=hostname if isinstance(hostname, str) else None,
        limit=float(limit or 0),
    )
