"""The flow-control contract on PostgreSQL and Redis (races on separate connections)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.limiter import RedisLimiter, StoreLimiter
from conveyor.store.base import JobStore
from conveyor.store.sql import SqlStore
from tests.flow_contract import ExpiringLeaseContract, LimiterContract, Opener, QueueStateContract
from tests.integration.test_store_sql import throwaway_database
from tests.support.services import REDIS_URL, require

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with throwaway_database() as url:
        store = SqlStore(url)
        store.migrate()
        store.close()
        yield url


@pytest.fixture
def pg_stores(pg_url: str) -> Iterator[list[SqlStore]]:
    opened: list[SqlStore] = []
    yield opened
    for store in opened:
        store.close()


def _pg_opener(url: str, opened: list[SqlStore], lease: float) -> Opener:
    def open_one() -> StoreLimiter:
        store = SqlStore(url)
        opened.append(store)
        return StoreLimiter(store, lease=lease, retry_delay=1.0)

    return open_one


class TestPostgresLimiter(LimiterContract, ExpiringLeaseContract):
    @pytest.fixture
    def limiters(self, pg_url: str, pg_stores: list[SqlStore]) -> Opener:
        return _pg_opener(pg_url, pg_stores, 30.0)

    @pytest.fixture
    def short_limiters(self, pg_url: str, pg_stores: list[SqlStore]) -> Opener:
        return _pg_opener(pg_url, pg_stores, 1.5)

    @pytest.fixture
    def limiter(self, limiters: Opener) -> object:
        return limiters()


class TestPostgresQueueStates(QueueStateContract):
    @pytest.fixture
    def store(self, pg_url: str, pg_stores: list[SqlStore]) -> JobStore:
        store = SqlStore(pg_url)
        pg_stores.append(store)
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM queue_states")
            conn.exec_driver_sql("DELETE FROM queue_consumers")
        return store


class TestRedisLimiter(LimiterContract, ExpiringLeaseContract):
    @pytest.fixture
    def limiters(self) -> Opener:
        require("redis")
        return lambda: RedisLimiter(REDIS_URL, lease=30.0, retry_delay=1.0)

    @pytest.fixture
    def short_limiters(self) -> Opener:
        require("redis")
        return lambda: RedisLimiter(REDIS_URL, lease=1.5, retry_delay=1.0)

    @pytest.fixture
    def limiter(self, limiters: Opener) -> object:
        return limiters()
