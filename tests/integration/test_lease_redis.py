"""The scheduler's leader lease on Redis: SET NX PX, compare-and-extend, compare-and-delete."""

from __future__ import annotations

import time

import pytest
import redis

from conveyor.jobs import utcnow
from conveyor.lease import REDIS_KEY_PREFIX, RedisLease, StoreLease, open_lease
from conveyor.settings import load_settings
from conveyor.store.memory import MemoryStore
from tests.support.services import REDIS_URL, flush_redis

pytestmark = pytest.mark.integration

DB = 6


@pytest.fixture
def url() -> str:
    flush_redis(DB)
    return f"{REDIS_URL}/{DB}"


def test_one_holder_renewal_expiry_and_release(url: str) -> None:
    a = RedisLease(url, "leader", "a", ttl=1.0)
    b = RedisLease(url, "leader", "b", ttl=1.0)
    raw = redis.Redis.from_url(url)
    try:
        assert a.acquire()
        assert not b.acquire()
        assert b.current_holder() == "a"
        for _ in range(3):  # renewing keeps it past its first TTL
            time.sleep(0.4)
            assert a.acquire()
            assert not b.acquire()
        ttl = raw.pttl(REDIS_KEY_PREFIX + "leader")
        assert 0 < ttl <= 1000
        time.sleep(1.2)  # a stops renewing (it died): the key expires
        assert b.acquire()
        assert not a.acquire()  # a may not extend b's lease
        assert b.current_holder() == "b"
        a.release()  # not a's lease: nothing is deleted
        assert raw.get(REDIS_KEY_PREFIX + "leader") == b"b"
        b.release()
        assert raw.get(REDIS_KEY_PREFIX + "leader") is None
    finally:
        raw.close()


def test_unreachable_redis_means_not_leader() -> None:
    lease = RedisLease("redis://127.0.0.1:1/0", "leader", "a", ttl=1.0)
    assert not lease.acquire()
    lease.release()


def test_the_broker_decides_where_the_lease_lives(url: str) -> None:
    store = MemoryStore()
    on_redis = open_lease(load_settings(broker_url=url), store, "leader", "h")
    assert isinstance(on_redis, RedisLease)
    embedded = open_lease(load_settings(), store, "leader", "h")
    assert isinstance(embedded, StoreLease)
    assert embedded.acquire() and store.lease_holder("leader", utcnow()) == "h"
