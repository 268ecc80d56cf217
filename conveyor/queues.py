"""Queues as users see them: depth (messages waiting), paused flag, consumers, capabilities.

Pausing is stored in the job store (``queue_states``); every worker polls it and
stops or starts consuming (see :mod:`conveyor.queuestate`). Depth is asked from
the broker: Redis ``LLEN`` over the priority sub-queues, RabbitMQ a passive
``queue_declare``, the embedded filesystem broker counts the message files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import redis
from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from conveyor.errors import ConveyorError
from conveyor.jobs import utcnow
from conveyor.settings import Settings
from conveyor.store.base import JobStore

BrokerKind = Literal["filesystem", "redis", "rabbitmq", "other"]

#: kombu's Redis transport keeps priority p in the list ``<queue>:<p>`` (p = 0: ``<queue>``)
REDIS_PRIORITY_STEPS = range(10)


class UnknownQueue(ConveyorError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown queue {name!r}; configured queues: {', '.join(known)}")
        self.name = name


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    #: messages waiting in the broker (None when the broker could not be asked)
    depth: int | None
    paused: bool
    #: workers that consume this queue now (reported within the last few seconds)
    consumers: list[str]
    #: whether the broker orders messages by priority (False: FIFO, priority ignored)
    priorities: bool


def broker_kind(settings: Settings) -> BrokerKind:
    if settings.is_embedded_broker:
        return "filesystem"
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return "redis"
    if settings.broker_url.startswith(("amqp://", "amqps://", "pyamqp://")):
        return "rabbitmq"
    return "other"


def supports_priorities(settings: Settings) -> bool:
    return broker_kind(settings) in ("redis", "rabbitmq")


def broker_priority(settings: Settings, priority: int | None) -> int | None:
    """The message priority for conveyor's ``priority`` (0 lowest … 9 highest, None = 0).

    RabbitMQ delivers higher numbers first; kombu's Redis transport serves its
    sub-queue 0 first, so on Redis the number is turned around (and a job
    without a priority goes last with priority-0 jobs, as on RabbitMQ).
    Retries and deferrals re-publish the message's own (already turned) value.
    """
    if broker_kind(settings) == "redis":
        return 9 - (priority or 0)
    return priority


def _filesystem_depth(folder: Path, name: str) -> int:
    suffix = f".{name}.msg"
    return sum(1 for path in folder.iterdir() if path.name.endswith(suffix))


def _redis_depth(url: str, name: str) -> int:
    client = redis.Redis.from_url(url, socket_timeout=3)
    try:
        with client.pipeline() as pipe:
            for step in REDIS_PRIORITY_STEPS:
                pipe.llen(f"{name}:{step}" if step else name)
            return sum(int(size) for size in pipe.execute())
    finally:
        client.close()


def _amqp_depth(app: Celery, name: str) -> int:
    with app.connection_for_read() as conn:
        channel = conn.channel()
        try:
            return int(channel.queue_declare(queue=name, passive=True).message_count)
        except conn.channel_errors:  # not declared yet: nothing was ever sent to it
            return 0
        finally:
            if channel.is_open:
                channel.close()


def queue_depth(settings: Settings, app: Celery, name: str) -> int | None:
    """Messages waiting in ``name`` (None when the broker cannot be asked)."""
    kind = broker_kind(settings)
    depth: dict[str, Callable[[], int]] = {
        "filesystem": lambda: _filesystem_depth(settings.broker_folder / "queue", name),
        "redis": lambda: _redis_depth(settings.broker_url, name),
        "rabbitmq": lambda: _amqp_depth(app, name),
    }
    if kind not in depth:
        return None
    try:
        return depth[kind]()
    except (OSError, redis.RedisError, KombuOperationalError):
        return None


def consumers_since(settings: Settings) -> datetime:
    """Workers that reported later than this are alive (three missed reports = gone)."""
    return utcnow() - timedelta(seconds=3 * settings.queue_state_interval + 2)


def list_queues(settings: Settings, store: JobStore, app: Celery) -> list[QueueInfo]:
    paused = {state.name for state in store.list_queue_states() if state.paused}
    consumers = store.list_consumers(consumers_since(settings))
    return [
        QueueInfo(
            name=name,
            depth=queue_depth(settings, app, name),
            paused=name in paused,
            consumers=consumers.get(name, []),
            priorities=supports_priorities(settings),
        )
        for name in settings.queues
    ]


def set_paused(settings: Settings, store: JobStore, name: str, paused: bool) -> None:
    """Pause (or resume) ``name``: workers stop (start) consuming it within a few seconds."""
    if name not in settings.queues:
        raise UnknownQueue(name, list(settings.queues))
    store.set_queue_paused(name, paused, utcnow())
