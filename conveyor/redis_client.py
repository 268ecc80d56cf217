"""One redis-py client per kombu Redis channel, instead of one per command.

kombu's Redis transport builds a new ``redis.Redis`` client each time it sends a
command outside its event loop (``Channel.conn_or_acquire``): when a worker takes
a message (the unacked bookkeeping of ``QoS.append``), acknowledges one, puts one
back, or a producer publishes. Building a client costs more than the command it
sends (redis-py fills a table of ~200 reply callbacks per client): profiled in a
threads worker draining 10 ms jobs, ``Redis.__init__`` was 10 % of the time the
process held the GIL (docs/benchmarks.md).

A client holds no connection of its own: each command or pipeline takes one from
the channel's connection pool and gives it back, so threads may share it, and
redis-py's pool starts afresh in a forked child. :func:`install` makes
``conn_or_acquire`` hand out the channel's shared client (built by kombu's own
``_create_client``: key prefixes and credentials included); a channel whose pool
kombu replaced (after a connection error) gets a new one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis

_SHARED = "_conveyor_client"


def shared_client(channel: Any) -> Any:
    """The channel's client, built on first use and again if the channel's pool changed."""
    pool = channel.pool
    client = vars(channel).get(_SHARED)
    if client is None or client.connection_pool is not pool:
        client = channel._create_client()
        setattr(channel, _SHARED, client)
    return client


@contextmanager
def _conn_or_acquire(self: Any, client: Any = None) -> Iterator[Any]:
    yield client if client else shared_client(self)


def install() -> None:
    """Make every kombu Redis channel of this process share one client (idempotent)."""
    kombu_redis.Channel.conn_or_acquire = _conn_or_acquire


def installed() -> bool:
    return kombu_redis.Channel.conn_or_acquire is _conn_or_acquire
