"""The plain Celery twin of ``bench.drain_tasks``: the reference ``bench/drain.py`` compares to.

A separate module and ``shared=False``: a shared task of the same name would also
land on conveyor's app in the same process and replace conveyor's task there.
"""

from __future__ import annotations

import os

from celery import Celery

import bench.drain_probe  # noqa: F401  (connects the start/finish probe in every worker)

TASK = "bench.noop"
PLAIN_QUEUE = "plain"
BROKER_ENV = "CONVEYOR_BENCH_BROKER"

#: plain Celery with the delivery flags conveyor uses (late ack, prefetch 4, JSON),
#: no result backend and no events
plain = Celery(
    "plain", broker=os.environ.get(BROKER_ENV, "redis://127.0.0.1:6379/5"), set_as_current=False
)
plain.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=4,
    task_default_queue=PLAIN_QUEUE,
    worker_hijack_root_logger=False,
)


@plain.task(name=TASK, shared=False)
def plain_noop(n: int) -> None:
    return None
