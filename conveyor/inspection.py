"""Asking the broker and the workers what they hold right now.

* ``queue_depths``: messages waiting per queue, from the broker itself (Redis
  ``LLEN`` over the priority sub-queues, RabbitMQ ``queue.declare(passive=True)``,
  the filesystem transport counts message files) through kombu's channel API.
* ``broker_reachable``: one connection attempt with a short timeout.
* ``inspect_workers``: Celery's remote-control inspect (``stats``, ``active_queues``,
  ``active``), which every worker answers over the broker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from celery import Celery
from kombu.exceptions import ChannelError, OperationalError

from conveyor.jobs import utcnow

#: Exceptions a broker call may raise when the broker is down or misconfigured.
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, ChannelError, OSError)


def broker_reachable(app: Celery, timeout: float = 2.0) -> str | None:
    """None when the broker accepts a connection, else the reason it does not."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            conn.default_channel.close()  # opening a channel proves the login works
    except BROKER_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _depth(conn: Any, queue: str) -> int:
    is_amqp = conn.transport.driver_type == "amqp"
    channel = conn.channel()
    try:
        # a virtual transport (Redis, filesystem) counts on a plain declare, which creates
        # nothing; on AMQP only a passive declare leaves a missing queue missing
        return int(channel.queue_declare(queue=queue, passive=is_amqp).message_count)
    except ChannelError:
        return 0  # not declared yet: nothing waits in it
    finally:
        with suppress(*BROKER_ERRORS):
            channel.close()


def queue_depths(app: Celery, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each queue (ready, not yet delivered to a worker)."""
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {queue: _depth(conn, queue) for queue in queues}


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    name: str
    queues: list[str]
    concurrency: int | None
    active_job_ids: list[str]
    last_heartbeat: datetime
    pid: int | None = None
    processed: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "queues": self.queues,
            "concurrency": self.concurrency,
            "active_job_ids": self.active_job_ids,
            "last_heartbeat": self.last_heartbeat.isoformat(),
            "pid": self.pid,
            "processed": self.processed,
        }


def _worker(
    name: str, stats: Mapping[str, Any], queues: Sequence[Mapping[str, Any]], active: Any
) -> WorkerInfo:
    pool = stats.get("pool") or {}
    concurrency = pool.get("max-concurrency") if isinstance(pool, Mapping) else None
    return WorkerInfo(
        name=name,
        queues=sorted(str(q.get("name")) for q in queues or ()),
        concurrency=int(concurrency) if isinstance(concurrency, int) else None,
        active_job_ids=sorted(str(t.get("id")) for t in active or ()),
        last_heartbeat=utcnow(),
        pid=stats.get("pid") if isinstance(stats.get("pid"), int) else None,
        processed={str(k): int(v) for k, v in (stats.get("total") or {}).items()},
    )


def inspect_workers(app: Celery, timeout: float = 1.0) -> list[WorkerInfo]:
    """Every worker that answers within ``timeout``; ``last_heartbeat`` is when it answered."""
    inspect = app.control.inspect(timeout=timeout)
    with ThreadPoolExecutor(max_workers=3) as pool:  # each call waits the whole timeout
        calls = [
            pool.submit(call) for call in (inspect.stats, inspect.active_queues, inspect.active)
        ]
        stats, queues, active = (dict(call.result() or {}) for call in calls)
    names = sorted(set(stats) | set(queues))
    return [_worker(n, stats.get(n) or {}, queues.get(n) or [], active.get(n)) for n in names]


def consumed_queues(app: Celery, timeout: float = 1.0) -> set[str]:
    """The queues at least one worker consumes (asked with ``active_queues``)."""
    replies: dict[str, Any] = app.control.inspect(timeout=timeout).active_queues() or {}
    return {str(q.get("name")) for queues in replies.values() for q in queues or ()}


def workers_online(app: Celery, timeout: float = 1.0) -> int:
    replies = app.control.inspect(timeout=timeout).ping() or {}
    return len(replies)
