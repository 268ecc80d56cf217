"""Held acks released together leave Redis in one round trip (conveyor/ack_batch.py).

Real Redis, real kombu: messages fetched without ack sit in kombu's "unacked"
hash and index; after ``ack_together`` they are gone from both with a single
``EXEC``, and closing the channel does not put them back on the queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Queue

from conveyor.ack_batch import ack_together
from tests.support.services import REDIS_URL, flush_redis

pytestmark = pytest.mark.integration

DB = 11
QUEUE = Queue("ackbatch", Exchange("ackbatch", type="direct"), routing_key="ackbatch")


class Held:
    def __init__(self, message: Any) -> None:
        self.message = message
        self.acknowledged = False


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    flush_redis(DB)
    client = redis.Redis.from_url(f"{REDIS_URL}/{DB}")
    yield client
    client.flushdb()


def _exec_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_exec", {}).get("calls", 0))


def _fetch(conn: Connection, count: int) -> list[Held]:
    channel = conn.default_channel
    bound = QUEUE(channel)
    bound.declare()
    producer = conn.Producer(channel)
    for n in range(count):
        producer.publish({"n": n}, exchange=QUEUE.exchange, routing_key="ackbatch")
    held = []
    for _ in range(count):
        message = bound.get(no_ack=False)
        assert message is not None
        held.append(Held(message))
    return held


def test_a_group_of_acks_is_one_round_trip(client: redis.Redis) -> None:
    with Connection(f"{REDIS_URL}/{DB}") as conn:
        held = _fetch(conn, 25)
        assert client.hlen("unacked") == 25
        before = _exec_calls(client)
        rest = ack_together(held)
        assert rest == []
        assert _exec_calls(client) - before == 1
        assert client.hlen("unacked") == 0
        assert client.zcard("unacked_index") == 0
        assert all(h.acknowledged and h.message.acknowledged for h in held)
    # the channel closed: acknowledged messages are not restored to the queue
    assert client.llen("ackbatch") == 0


def test_what_cannot_be_grouped_is_left_to_its_own_ack(client: redis.Redis) -> None:
    with Connection(f"{REDIS_URL}/{DB}") as conn:
        held = _fetch(conn, 3)
        held[0].message.ack()  # acknowledged already: left alone
        alone = _fetch(conn, 1)
        with Connection("memory://") as memory:  # another transport
            other = _fetch(memory, 1)
            rest = ack_together([*held, *other])
        assert rest == [held[0], *other]
        assert not other[0].acknowledged
        assert client.hlen("unacked") == 1  # only `alone` is still held
        assert ack_together(alone) == alone  # a single message: its own ack is as cheap
        alone[0].message.ack()
        assert client.hlen("unacked") == 0
