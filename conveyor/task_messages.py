"""Celery task messages (protocol 2) built by conveyor, for publishing in bulk.

``Celery.send_task`` spent about two thirds of a 1,000-job batch building each message
(option merging, routing, the retry wrapper, a result object per job). For a batch,
:class:`DirectMessages` builds the very message ``send_task`` builds for the options
conveyor gives it (``Submitter.dispatch``): the headers of
``celery.app.amqp.AMQP.as_task_v2``, the properties (``correlation_id``, ``reply_to``,
``priority``) and the body ``[args, kwargs, embed]``, routed as
``send_task_message`` routes a direct-exchange queue; kombu's ``Producer.publish``
then serialises it with the app's serializer and hands it to the transport, exactly
as for ``send_task``. tests/integration/test_bulk_publish.py compares the Redis
bytes of both paths.

On Redis, :meth:`DirectMessages.encode` goes one step further: it builds the bytes kombu's
Redis transport would LPUSH for that ``Producer.publish`` (the body serialised and
base64-encoded, the envelope with its properties and delivery tag, the priority step's
list), so conveyor.publishing pushes a chunk of them with one LPUSH per list, without
kombu's per-message call chain (a third of a batch's CPU). The same test compares those
bytes too.

Covered: Redis (a producer that batches publishes), the app's protocol 2, tasks whose
Celery execution options are only time limits and the serializer, queues the app
knows. Everything else goes through ``send_task`` (:meth:`DirectMessages.for_batch`
returns None, or :meth:`DirectMessages.publish` returns False for one job):
RabbitMQ and the embedded filesystem broker (no batch publishing in kombu), task-sent
events on (``CONVEYOR_TASK_EVENTS``), receivers of Celery's publish signals, a
wrapped ``send_task`` (e.g. Sentry's Celery integration adds trace headers there),
publishing from inside a running task (``send_task`` links the job to its parent),
tasks with other execution options (``expires``, ``routing_key``, ``compression`` ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import Celery, signals
from celery.app import base as celery_base
from celery.utils.nodenames import anon_nodename
from celery.utils.saferepr import saferepr
from kombu import serialization
from kombu.entity import maybe_delivery_mode
from kombu.transport import redis as kombu_redis
from kombu.utils import json as kombu_json

from conveyor.jobs import random_uuid

#: execution options a task may carry that the direct build reproduces
_COVERED_OPTIONS = frozenset({"time_limit", "soft_time_limit", "serializer"})
#: the embed part of the body: conveyor sends no callbacks, errbacks, chains or chords
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
#: kombu's json serializer: its encoder (datetimes, UUIDs, decimals ...) and content type
_BODY_JSON = kombu_json.JSONEncoder()
_JSON_CONTENT = ("application/json", "utf-8")
_PUBLISH_SIGNALS = (signals.before_task_publish, signals.after_task_publish, signals.task_sent)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One job's message as conveyor asks for it (what it passes to ``send_task``)."""

    task: str
    id: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str
    #: the broker priority (already turned around on Redis, see queues.broker_priority)
    priority: int | None
    eta: datetime | None
    #: headers of conveyor's own (the workflow id), or None
    headers: Mapping[str, str] | None
    retries: int = 0


@dataclass(frozen=True, slots=True)
class _TaskShape:
    """What one task contributes to its messages."""

    timelimit: tuple[float | None, float | None]
    serializer: str


def _plain_send_task(app: Celery) -> bool:
    """Whether ``send_task`` is Celery's own (not wrapped by an integration)."""
    unwrap = getattr(app, "_get_current_object", None)  # Celery's app proxy (in a worker)
    if callable(unwrap):
        app = unwrap()
    if "send_task" in vars(app):
        return False
    method = type(app).send_task
    code = getattr(method, "__code__", None)
    return (
        not hasattr(method, "__wrapped__")
        and code is not None
        and code.co_filename == celery_base.__file__
        and code.co_name == "send_task"
    )


class DirectMessages:
    """Builds and publishes the messages of one bulk publish (one thread, one producer)."""

    def __init__(self, app: Celery, raw_channel: Any = None) -> None:
        conf = app.conf
        amqp = app.amqp
        self._app = app
        self._queues = amqp.queues
        self._origin = anon_nodename()
        self._reply_to = app.thread_oid
        self._serializer = conf.task_serializer
        self._compression = conf.task_compression
        self._delivery_mode = conf.task_default_delivery_mode
        self._argsrepr_max = amqp.argsrepr_maxsize
        self._kwargsrepr_max = amqp.kwargsrepr_maxsize
        self._maxlevels = conf.task_repr_maxlevels
        self._shapes: dict[str, _TaskShape | None] = {}
        #: the Redis channel :meth:`encode` builds for, or None (see :meth:`raw_channel`)
        self._raw: Any = None if self._compression else raw_channel
        self._modes: dict[str, Any] = {}

    @classmethod
    def for_batch(cls, app: Celery, producer: Any) -> DirectMessages | None:
        """A builder for this publish, or None when ``send_task`` must build every message."""
        conf = app.conf
        if not producer.supports_batch_publish:  # RabbitMQ, filesystem: send_task
            return None
        if conf.task_protocol != 2 or conf.task_send_sent_event:
            return None
        if any(signal.receivers for signal in _PUBLISH_SIGNALS):
            return None
        if app.current_worker_task is not None or not _plain_send_task(app):
            return None
        channel = getattr(producer, "channel", None)
        return cls(app, channel if isinstance(channel, kombu_redis.Channel) else None)

    @property
    def raw_channel(self) -> Any:
        """The kombu Redis channel whose lists :meth:`encode`'s messages go to, or None
        when every message must go through :meth:`publish` (another broker, or
        compression: kombu would add a header for it)."""
        return self._raw

    def _shape(self, name: str) -> _TaskShape | None:
        if name not in self._shapes:
            self._shapes[name] = self._shape_of(name)
        return self._shapes[name]

    def _shape_of(self, name: str) -> _TaskShape | None:
        # as send_task: the task's own execution options (None values dropped) are defaults
        task = self._app._tasks.get(name)  # (without finalizing the app, as send_task)
        options: dict[str, Any] = {}
        if task is not None and hasattr(task, "_get_exec_options"):
            options = {k: v for k, v in (task._get_exec_options() or {}).items() if v is not None}
        if set(options) - _COVERED_OPTIONS:
            return None
        return _TaskShape(
            timelimit=(options.get("time_limit"), options.get("soft_time_limit")),
            serializer=options.get("serializer") or self._serializer,
        )

    def _covered(self, out: Outgoing) -> tuple[_TaskShape, Any] | None:
        """``out``'s task shape and queue when this module builds its message, else None."""
        shape = self._shape(out.task)
        queue = self._queues.get(out.queue)
        if shape is None or queue is None or queue.exchange.type != "direct":
            return None
        return shape, queue

    def publish(self, producer: Any, out: Outgoing) -> bool:
        """Publish ``out`` on ``producer`` (its queue declared already); False when this
        message is not covered and must go through ``send_task``. Broker errors raise."""
        covered = self._covered(out)
        if covered is None:
            return False
        shape, queue = covered
        with producer.connection._reraise_as_library_errors():
            producer.publish(
                (out.args, out.kwargs, dict(_EMBED)),
                exchange="",  # a direct exchange: the anonymous one, keyed by queue name
                routing_key=queue.name,
                serializer=shape.serializer,
                compression=self._compression,
                retry=False,  # buffered in the batch: a failure shows when it is flushed
                delivery_mode=queue.exchange.delivery_mode or self._delivery_mode,
                declare=[],
                headers=self._headers(out, shape),
                timeout=None,
                confirm_timeout=None,
                correlation_id=out.id,
                reply_to=self._reply_to,
                priority=out.priority,
            )
        return True

    def encode(self, out: Outgoing) -> tuple[str, str] | None:
        """``out`` as the Redis list and the bytes kombu's Redis transport would LPUSH
        there for :meth:`publish` (``Producer.publish`` → ``Channel.basic_publish`` →
        ``_put``), built without kombu's per-message call chain; None when it is not
        covered (see :meth:`raw_channel`) and must be published by :meth:`publish`."""
        channel = self._raw
        covered = self._covered(out) if channel is not None else None
        if covered is None:
            return None
        shape, queue = covered
        if queue.name in (channel._expires or {}):  # kombu adds PEXPIREs for those
            return None
        # Producer._prepare (the json serializer's own encoder, without the registry's
        # per-call wrapping), then Channel._inplace_augment_message's body encoding
        body_data = (out.args, out.kwargs, dict(_EMBED))
        if shape.serializer == "json":
            content_type, content_encoding = _JSON_CONTENT
            data: Any = _BODY_JSON.encode(body_data)
        else:
            content_type, content_encoding, data = serialization.dumps(
                body_data, serializer=shape.serializer
            )
        body, body_encoding = channel.encode_body(data, channel.body_encoding)
        priority = out.priority or channel.default_priority  # Channel.prepare_message
        message = {
            "body": body,
            "content-encoding": content_encoding,
            "content-type": content_type,
            "headers": self._headers(out, shape),
            "properties": {
                "correlation_id": out.id,
                "reply_to": self._reply_to,
                "delivery_mode": self._mode_of(queue),
                "delivery_info": {"exchange": "", "routing_key": queue.name},
                "priority": priority,
                "body_encoding": body_encoding,
                # kombu's is str(uuid4()) (virtual.Channel._next_delivery_tag): the same form
                "delivery_tag": random_uuid(),
            },
        }
        # Channel._put: the priority step's list
        key: str = channel._q_for_pri(queue.name, channel._get_message_priority(message))
        # Channel._put dumps it with kombu's encoder; every value here is a plain str,
        # int, float, None, list or dict, which the standard encoder writes identically
        return key, json.dumps(message)

    def _mode_of(self, queue: Any) -> Any:
        """The delivery mode ``Producer.publish`` gives a message of ``queue``."""
        mode = self._modes.get(queue.name)
        if mode is None:
            mode = self._modes[queue.name] = maybe_delivery_mode(
                queue.exchange.delivery_mode or self._delivery_mode
            )
        return mode

    def _headers(self, out: Outgoing, shape: _TaskShape) -> dict[str, Any]:
        eta = out.eta.isoformat() if out.eta is not None else None
        headers: dict[str, Any] = {
            "lang": "py",
            "task": out.task,
            "id": out.id,
            "shadow": None,
            "eta": eta,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": out.retries,
            "timelimit": list(shape.timelimit),
            "root_id": out.id,
            "parent_id": None,
            "argsrepr": self._repr(out.args, self._argsrepr_max),
            "kwargsrepr": self._repr(out.kwargs, self._kwargsrepr_max),
            "origin": self._origin,
            "ignore_result": True,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        }
        if out.headers:
            headers.update(out.headers)
        return headers

    def _repr(self, value: Any, maxsize: int) -> str:
        if not value:  # the common case, without saferepr's walk: '[]' / '{}'
            return "[]" if isinstance(value, list) else "{}"
        text: str = saferepr(value, maxsize, maxlevels=self._maxlevels)
        return text
