"""Publishing many jobs to the broker at once.

Every message is still built by Celery's own ``send_task`` (the same body,
headers, queue, priority and eta as a one-by-one publish), but on Redis the
writes go through kombu's ``Producer.batch()``: the LPUSHes (and task-sent
events) of a chunk of jobs reach Redis in one pipelined round trip instead of
one round trip each. Brokers without batch support in kombu (RabbitMQ, the
embedded ``filesystem://``) publish one by one inside the same call.

On Redis a chunk is sent or not as a whole as far as the caller knows: when a chunk's
flush fails, kombu cannot say which of its messages Redis received (a pipeline
is not a transaction), so every job of that chunk is reported unsent, exactly
as a one-by-one publish whose reply was lost is reported failed. The caller
decides what unsent means (the submitter deletes the rows it just wrote, the
delayed-job release puts them back to SCHEDULED).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from kombu.exceptions import BatchPublishError
from kombu.exceptions import OperationalError as KombuOperationalError

from conveyor.jobs import Job

#: jobs per pipelined round trip (one Redis pipeline flush)
CHUNK = 500
#: kombu flushes a batch on its own once it holds this many commands; set above what a
#: chunk can produce (a publish, a task-sent event, queue expiry refreshes) so only the
#: explicit end of a chunk flushes, and a failure maps to exactly one chunk
_MAX_COMMANDS = CHUNK * 16

#: errors meaning "the broker did not take these messages"
PUBLISH_ERRORS: tuple[type[BaseException], ...] = (
    KombuOperationalError,
    BatchPublishError,
    OSError,
)

#: publishes one job on the producer it is given
Send = Callable[[Job, Any], None]


@dataclass
class Published:
    """What ``publish_many`` did: the jobs the broker took, and the ones it did not."""

    sent: list[Job] = field(default_factory=list)
    unsent: list[Job] = field(default_factory=list)
    error: BaseException | None = None


def publish_many(app: Celery, jobs: Sequence[Job], send: Send, *, chunk: int = CHUNK) -> Published:
    """Publish ``jobs`` in order over one producer, ``chunk`` per pipelined flush."""
    outcome = Published()
    if not jobs:
        return outcome
    try:
        with app.producer_or_acquire() as producer:
            # without batch support each publish is done when send returns
            batching = bool(producer.supports_batch_publish)
            for start in range(0, len(jobs), chunk):
                part = jobs[start : start + chunk]
                with producer.batch(max_size=max(_MAX_COMMANDS, 16 * len(part))):
                    for job in part:
                        send(job, producer)
                        if not batching:
                            outcome.sent.append(job)
                if batching:
                    outcome.sent.extend(part)
    except PUBLISH_ERRORS as exc:
        outcome.unsent = list(jobs[len(outcome.sent) :])
        outcome.error = exc
    return outcome
