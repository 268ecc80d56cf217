"""Acknowledging many Redis messages in one round trip.

kombu's Redis transport acknowledges a message by removing it from the
"unacked" index and hash: one ``MULTI ZREM HDEL EXEC`` round trip per message,
made by the worker's event-loop thread, which also fetches and dispatches every
message. A worker that defers acks (:mod:`conveyor.acks`) releases them in
groups, one per recorder batch; :func:`ack_together` sends a group's removals in
one pipeline and then does kombu's own bookkeeping for each message, as
``QoS.ack`` would. Other transports (RabbitMQ, the embedded broker) are left to
their own ack, one message at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, cast

import structlog
from kombu.transport.redis import QoS as RedisQoS

log = structlog.get_logger("conveyor.worker")


class BatchAckable(Protocol):
    """A held run whose message can be acknowledged together with others."""

    acknowledged: bool

    @property
    def message(self) -> Any: ...


#: any held run: those that are not a ``BatchAckable`` on Redis are handed back
R = TypeVar("R")


def _redis_qos(request: object) -> RedisQoS | None:
    message: Any = getattr(request, "message", None)
    channel = getattr(message, "channel", None)
    if channel is None or message.acknowledged or getattr(request, "acknowledged", True):
        return None
    no_ack = getattr(channel, "no_ack_consumers", None)
    if no_ack and message.delivery_info.get("consumer_tag") in no_ack:
        return None
    qos = getattr(channel, "qos", None)
    return qos if isinstance(qos, RedisQoS) else None


def ack_together(requests: Sequence[R]) -> list[R]:
    """Acknowledge the Redis messages of ``requests`` in one round trip per channel.

    Returns the requests left for the caller to acknowledge one by one: those on
    another transport, and every request of a group whose pipeline failed (their
    own ack then retries, and logs as Celery does if the broker is gone).
    """
    groups: dict[int, tuple[RedisQoS, list[R]]] = {}
    rest: list[R] = []
    for request in requests:
        qos = _redis_qos(request)
        if qos is None:
            rest.append(request)
        else:
            groups.setdefault(id(qos), (qos, []))[1].append(request)
    for qos, group in groups.values():
        if len(group) == 1:
            rest.extend(group)
            continue
        try:
            with qos.pipe_or_acquire() as pipe:
                for request in group:
                    qos._remove_from_indices(cast(BatchAckable, request).message.delivery_tag, pipe)
                pipe.execute()
        except Exception as exc:  # each request's own ack then retries and reports it
            log.warning("ack_batch_failed", messages=len(group), error=str(exc))
            rest.extend(group)
            continue
        for request in group:
            held = cast(BatchAckable, request)
            # what kombu's QoS.ack and Message.ack do after the removal
            super(RedisQoS, qos).ack(held.message.delivery_tag)
            held.message._state = "ACK"
            held.acknowledged = True
    return rest
