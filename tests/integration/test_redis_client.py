"""kombu's Redis channels share one redis-py client each (conveyor.redis_client), on a
redis-server of the test's own: the same client for every command, a new one when kombu
replaces the channel's pool, key prefixes kept, threads sharing it, a restart survived."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Queue

from conveyor import redis_client
from conveyor.engine import create_app
from conveyor.testing import inline_settings
from tests.support.private_redis import private_redis, private_redis_server

pytestmark = pytest.mark.integration


def _acquired(channel: Any) -> Any:
    with channel.conn_or_acquire() as client:
        return client


def test_an_app_on_redis_installs_it(tmp_path: Path) -> None:
    with private_redis(tmp_path) as url:
        app = create_app(inline_settings(data_dir=tmp_path / "var", broker_url=url))
        assert redis_client.installed()
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            first = _acquired(channel)
            assert _acquired(channel) is first is redis_client.shared_client(channel)
            other = redis.Redis.from_url(url)
            with channel.conn_or_acquire(other) as given:  # a client passed in is used as is
                assert given is other
            other.close()
            channel._disconnect_pools()  # kombu drops its pools after a connection error
            renewed = _acquired(channel)
            assert renewed is not first and renewed.connection_pool is channel.pool
            assert renewed.ping()


def test_messages_flow_through_the_shared_client_with_a_key_prefix(tmp_path: Path) -> None:
    redis_client.install()
    queue = Queue("shared", Exchange("shared", type="direct"), routing_key="shared")
    with private_redis(tmp_path) as url:
        options = {"global_keyprefix": "px:"}
        with Connection(url, transport_options=options) as conn:
            channel = conn.default_channel
            producer = conn.Producer(channel)
            for n in range(20):
                producer.publish({"n": n}, exchange=queue.exchange, routing_key="shared",
                                 declare=[queue])  # fmt: skip
            raw = redis.Redis.from_url(url)
            assert raw.llen("px:shared") == 20  # the prefix applied by the shared client
            seen = []
            for _ in range(20):
                message = queue(channel).get(no_ack=False)  # QoS.append: the unacked hash
                assert message is not None
                seen.append(message.payload["n"])
                message.ack()  # QoS.ack: removed again
            assert sorted(seen) == list(range(20))
            assert raw.hlen("px:unacked") == 0 and raw.llen("px:shared") == 0
            raw.close()


def test_threads_share_it(tmp_path: Path) -> None:
    redis_client.install()
    with private_redis(tmp_path) as url, Connection(url) as conn:
        channel = conn.default_channel
        errors: list[BaseException] = []

        def push(worker: int) -> None:
            try:
                for n in range(200):
                    with channel.conn_or_acquire() as client, client.pipeline() as pipe:
                        pipe.rpush(f"list:{worker}", n).incr("count").execute()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        raw = redis.Redis.from_url(url)
        assert int(raw.get("count") or 0) == 1600
        assert [int(v) for v in raw.lrange("list:3", 0, -1)] == list(range(200))
        raw.close()


def test_a_redis_restart_is_survived(tmp_path: Path) -> None:
    redis_client.install()
    with private_redis_server(tmp_path) as server, Connection(server.url) as conn:
        channel = conn.default_channel
        client = _acquired(channel)
        client.set("before", 1)
        server.stop()
        server.start()  # the pooled connection is dead: redis-py reconnects on the next use
        with channel.conn_or_acquire() as again:
            assert again is client
            again.set("after", 2)
        assert int(again.get("after")) == 2
