"""The flow-control contract on the job store: in-memory twin and SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.limiter import StoreLimiter
from conveyor.store.base import JobStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sql import SqlStore
from tests.flow_contract import (
    ExpiringLeaseContract,
    LimiterContract,
    Opener,
    QueueStateContract,
)

StoreOpener = Callable[[], JobStore]


@pytest.fixture(params=["memory", "sqlite"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    opened: list[JobStore] = []
    memory = MemoryStore()

    def open_one() -> JobStore:
        if request.param == "memory":
            return memory
        store = SqlStore(f"sqlite:///{tmp_path}/jobs.db")
        opened.append(store)
        return store

    open_one().migrate()
    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(stores: StoreOpener) -> JobStore:
    return stores()


@pytest.fixture
def limiters(stores: StoreOpener) -> Opener:
    return lambda: StoreLimiter(stores(), lease=30.0, retry_delay=1.0)


@pytest.fixture
def limiter(limiters: Opener) -> StoreLimiter:
    made = limiters()
    assert isinstance(made, StoreLimiter)
    return made


@pytest.fixture
def short_limiters(stores: StoreOpener) -> Opener:
    return lambda: StoreLimiter(stores(), lease=1.5, retry_delay=1.0)


class TestStoreLimiter(LimiterContract, ExpiringLeaseContract):
    pass


class TestQueueStates(QueueStateContract):
    pass
