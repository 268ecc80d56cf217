"""The reliability store contract on the in-memory twin and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.store.base import JobStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sql import SqlStore
from tests.reliability_contract import Opener, ReliabilityContract


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
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
def store(backend: Opener) -> JobStore:
    return backend()


@pytest.fixture
def concurrent_store(backend: Opener) -> Opener:
    return backend


class TestReliabilityContract(ReliabilityContract):
    pass
