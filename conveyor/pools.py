"""Which Celery pool a worker runs, decided from the queues it consumes (pure).

Jobs that wait on the network (email, notifications, webhooks) want an I/O pool:
a hundred threads waiting at once cost less than two processes doing nothing.
Everything else (CPU work, imports, reports, maintenance) stays on prefork.
The I/O pool is ``threads``, not gevent: measured on the same machine in the same
runs, conveyor drained 10 ms sleeps about twice as fast on 100 threads as on 100
greenlets (docs/bench-notes/io.md), and threads need no extra package nor monkey
patches. ``gevent`` remains a choice per queue (``CONVEYOR_QUEUE_POOLS``).

Precedence, highest first: ``conveyor worker -P``, ``CONVEYOR_WORKER_POOL`` (when
not ``auto``), ``CONVEYOR_QUEUE_POOLS`` (the pool of each queue; prefork for the
queues it does not name), prefork. A worker consuming queues of different pools
runs prefork (the safe choice for CPU-bound jobs): ``conveyor up`` starts one
worker per pool instead.

This module is imported by :mod:`conveyor.greenlets` before gevent's monkey
patches are applied: standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

Pool = Literal["prefork", "threads", "solo", "gevent", "eventlet"]
PoolChoice = Literal["auto", "prefork", "threads", "solo", "gevent", "eventlet"]

AUTO: Literal["auto"] = "auto"
CPU_POOL: Pool = "prefork"
GREEN_POOLS: tuple[Pool, ...] = ("gevent", "eventlet")
#: pools sized by ``worker_io_concurrency`` (many slots, each mostly waiting)
IO_POOLS: tuple[Pool, ...] = ("threads", "gevent", "eventlet")
#: the queues conveyor's notification, email and webhook tasks use (``webhooks``: a
#: queue many applications add for their callbacks)
DEFAULT_QUEUE_POOLS: dict[str, Pool] = {
    "email": "threads",
    "notifications": "threads",
    "webhooks": "threads",
}


def queue_pool(queue: str, queue_pools: Mapping[str, Pool]) -> Pool:
    """The pool of one queue: its entry in ``queue_pools``, else prefork."""
    return queue_pools.get(queue, CPU_POOL)


def pool_for(
    queues: Iterable[str], queue_pools: Mapping[str, Pool], worker_pool: PoolChoice = AUTO
) -> Pool:
    """The pool of a worker consuming ``queues`` (``worker_pool``: -P or CONVEYOR_WORKER_POOL)."""
    if worker_pool != "auto":
        return worker_pool
    pools = {queue_pool(queue, queue_pools) for queue in queues}
    return pools.pop() if len(pools) == 1 else CPU_POOL


def pool_groups(queues: Iterable[str], queue_pools: Mapping[str, Pool]) -> dict[Pool, list[str]]:
    """The queues grouped by pool (first seen first): one worker per group in ``conveyor up``."""
    groups: dict[Pool, list[str]] = {}
    for queue in queues:
        groups.setdefault(queue_pool(queue, queue_pools), []).append(queue)
    return groups


def pool_size(pool: Pool, chosen_per_queue: bool, concurrency: int, io_concurrency: int) -> int:
    """The pool size when ``-c`` is not given (0: Celery's default, the number of CPUs).

    An I/O pool chosen per queue gets ``io_concurrency``; so does one asked for by name
    (``-P gevent``) while ``concurrency`` is 0, where Celery would start one greenlet
    per CPU.
    """
    if pool in IO_POOLS and (chosen_per_queue or concurrency == 0):
        return io_concurrency
    return concurrency
