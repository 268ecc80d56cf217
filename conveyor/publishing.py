"""Publishing jobs to the broker, many at once (a single submit is a batch of one).

On Redis a chunk of jobs reaches Redis in one pipelined round trip instead of one
round trip each. When conveyor.task_messages builds every message of the chunk (the
very message Celery's ``send_task`` would build), it also encodes them as kombu's
Redis transport would, and the chunk is one LPUSH of many values per list (the
"raw" path); otherwise the chunk goes through kombu's ``Producer.batch()``, and a
job that module does not cover is built by ``send_task`` as before. Brokers without
batch support in kombu (RabbitMQ, the embedded ``filesystem://``) publish one by one
through ``send_task`` inside the same call.

``ready`` lets the caller finish something before anything reaches the broker
(the submitter writes the jobs' rows meanwhile, in another thread): on Redis the
first chunk is built and buffered, then ``ready`` is awaited, then flushed; other
brokers await it before the first publish. It is awaited in every case before
``publish_many`` returns, and its error, if any, is raised with nothing sent.

On Redis a chunk is sent or not as a whole as far as the caller knows: when a chunk's
flush fails, neither path can say which of its messages Redis received (a pipeline
is not a transaction; the raw path raises kombu's ``BatchPublishError`` as kombu
does), so every job of that chunk is reported unsent, exactly as a one-by-one
publish whose reply was lost is reported failed. The caller
decides what unsent means (the submitter deletes the rows it just wrote, the
delayed-job release puts them back to SCHEDULED).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from kombu.exceptions import BatchPublishError
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

from conveyor.jobs import Job
from conveyor.redis_client import shared_client
from conveyor.task_messages import DirectMessages, Outgoing

#: jobs per pipelined round trip (one Redis pipeline flush)
CHUNK = 500
#: kombu flushes a batch on its own once it holds this many commands; set above what a
#: chunk can produce (a publish, a task-sent event, queue expiry refreshes) so only the
#: explicit end of a chunk flushes, and a failure maps to exactly one chunk
_MAX_COMMANDS = CHUNK * 16

#: seconds waited before pushing again to a Redis that refused the connection
REFUSED_WAITS = (0.2, 0.4)

#: errors meaning "the broker did not take these messages"
PUBLISH_ERRORS: tuple[type[Exception], ...] = (
    KombuOperationalError,
    BatchPublishError,
    OSError,
)

DECLARE_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}

#: publishes one job on the producer it is given (its queue already declared on it)
Send = Callable[[Job, Any], None]
#: the message conveyor asks for a job (see conveyor.task_messages)
Describe = Callable[[Job], Outgoing]
#: a job's Redis list and the bytes pushed there, or None (see DirectMessages.encode)
Encode = Callable[[Job], "tuple[str, str] | None"]


@dataclass
class Published:
    """What ``publish_many`` did: the jobs the broker took, and the ones it did not."""

    sent: list[Job] = field(default_factory=list)
    unsent: list[Job] = field(default_factory=list)
    #: what stopped the publishing (None when every job was sent)
    error: Exception | None = None


def publish_many(
    app: Celery,
    jobs: Sequence[Job],
    send: Send,
    *,
    describe: Describe | None = None,
    chunk: int = CHUNK,
    ready: Callable[[], None] | None = None,
) -> Published:
    """Publish ``jobs`` in order over one producer, ``chunk`` per pipelined flush.

    ``send`` publishes one job through Celery; with ``describe``, the jobs are built
    by conveyor.task_messages where it covers them (``send`` does the rest). Nothing
    reaches the broker before ``ready`` has returned (see the module's notes)."""
    gate = _Gate(ready)
    try:
        try:
            return _publish(app, jobs, send, describe, chunk, gate)
        finally:
            gate.wait()
    except _NotReady as stop:  # the caller's own error, raised as is: nothing was sent
        raise stop.error from None


class _NotReady(Exception):
    """``ready`` failed (never taken for a broker error on the way out)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _Gate:
    """Awaits ``ready`` once."""

    def __init__(self, ready: Callable[[], None] | None) -> None:
        self._ready = ready

    def wait(self) -> None:
        ready, self._ready = self._ready, None
        if ready is None:
            return
        try:
            ready()
        except Exception as exc:
            raise _NotReady(exc) from exc


def _publish(
    app: Celery,
    jobs: Sequence[Job],
    send: Send,
    describe: Describe | None,
    chunk: int,
    gate: _Gate,
) -> Published:
    outcome = Published()
    if not jobs:
        return outcome
    try:
        with app.producer_or_acquire() as producer:
            # without batch support each publish is done when send returns
            batching = bool(producer.supports_batch_publish)
            if not batching:
                gate.wait()
            direct = DirectMessages.for_batch(app, producer) if describe else None
            raw: tuple[Encode, Any] | None = None  # (the encoder, the channel it pushes to)
            if direct is not None and describe is not None:
                send = _direct_or(direct, describe, send)
                if direct.raw_channel is not None:
                    raw = (_encoder(direct, describe), direct.raw_channel)
            # each queue once here, not once per message (send passes ``declare=[]``)
            for name in sorted({job.queue for job in jobs}):
                queue = app.amqp.queues.get(name)  # (an unknown one fails in send, below)
                if queue is not None:
                    producer.maybe_declare(queue, retry=True, **DECLARE_RETRY)
            for start in range(0, len(jobs), chunk):
                part = jobs[start : start + chunk]
                if raw is None or not _pushed_raw(*raw, part, gate, outcome):
                    _batched(producer, part, send, batching, gate, outcome)
    except PUBLISH_ERRORS as exc:  # the broker failed: the rest is unsent
        done = {job.id for job in [*outcome.sent, *outcome.unsent]}
        outcome.unsent.extend(job for job in jobs if job.id not in done)
        outcome.error = exc
    return outcome


def _pushed_raw(
    encode: Encode, channel: Any, part: Sequence[Job], gate: _Gate, outcome: Published
) -> bool:
    """Send ``part`` as raw LPUSHes when conveyor builds every one of its messages."""
    lists = _encoded(encode, part)
    if lists is None:
        return False
    gate.wait()  # an error here: nothing of this chunk is sent
    _push(channel, lists)
    outcome.sent.extend(part)
    return True


def _batched(
    producer: Any,
    part: Sequence[Job],
    send: Send,
    batching: bool,
    gate: _Gate,
    outcome: Published,
) -> None:
    """Send ``part`` through kombu, in one ``Producer.batch`` where the broker has one."""
    buffered: list[Job] = []
    with producer.batch(max_size=max(_MAX_COMMANDS, 16 * len(part))):
        for job in part:
            if _sent_one(send, job, producer, outcome):
                # batched: sent once the batch is flushed (when the block ends)
                (buffered if batching else outcome.sent).append(job)
        gate.wait()  # an error here discards the batch: nothing is sent
    outcome.sent.extend(buffered)


def _encoder(direct: DirectMessages, describe: Describe) -> Encode:
    def encode(job: Job) -> tuple[str, str] | None:
        return direct.encode(describe(job))

    return encode


def _encoded(encode: Encode, part: Sequence[Job]) -> dict[str, list[str]] | None:
    """The chunk's messages by Redis list, in order, when conveyor.task_messages builds
    every one of them itself (:meth:`DirectMessages.encode`); None sends the chunk
    through kombu (``Producer.batch``), where a job failing on its own is told apart."""
    lists: dict[str, list[str]] = {}
    try:
        for job in part:
            encoded = encode(job)
            if encoded is None:
                return None
            lists.setdefault(encoded[0], []).append(encoded[1])
    except Exception:  # that job's own error is told apart by the kombu path
        return None
    return lists


def _push(channel: Any, lists: dict[str, list[str]]) -> None:
    """One pipelined round trip: an LPUSH of many values per list, which pushes them in
    order as one LPUSH each would (the consumer BRPOPs the other end). A refused
    connection (nothing sent: Redis restarting) is tried again after 0.2 and 0.4 s, as
    ``send_task``'s retry policy does; any other failure is reported as kombu reports
    a failed batch: delivery uncertain for the whole chunk."""
    for wait in (*REFUSED_WAITS, None):
        try:
            with shared_client(channel).pipeline(transaction=False) as pipe:
                for key, payloads in lists.items():
                    pipe.lpush(key, *payloads)
                pipe.execute()
            return
        except (RedisError, OSError) as exc:  # (not a bug of ours: that propagates as is)
            if wait is None or not _refused(exc):
                raise BatchPublishError(
                    "Redis publish batch failed; delivery is uncertain"
                ) from exc
        time.sleep(wait)


def _refused(exc: BaseException) -> bool:
    """Whether the connection was refused (so nothing of the pipeline was sent)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _direct_or(direct: DirectMessages, describe: Describe, send: Send) -> Send:
    def send_one(job: Job, producer: Any) -> None:
        if not direct.publish(producer, describe(job)):
            send(job, producer)

    return send_one


def _sent_one(send: Send, job: Job, producer: Any, outcome: Published) -> bool:
    """Send one job; a job that cannot be sent for a reason of its own (e.g. its queue is
    no longer configured) is noted unsent and the others go on. Broker errors propagate."""
    try:
        send(job, producer)
    except PUBLISH_ERRORS:
        raise
    except Exception as exc:  # noted for the caller, who puts the job back or refuses it
        outcome.unsent.append(job)
        outcome.error = exc
        return False
    return True


def broker_refused(outcome: Published) -> bool:
    """Whether the jobs went unsent because the broker failed (not a bug or bad data)."""
    return isinstance(outcome.error, PUBLISH_ERRORS)
