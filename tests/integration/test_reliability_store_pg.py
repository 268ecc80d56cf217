"""The reliability store contract on PostgreSQL (races run on separate connections)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.store.base import JobStore
from conveyor.store.schema import dead_letters, job_attempts, jobs
from conveyor.store.sql import SqlStore
from tests.integration.test_store_sql import throwaway_database
from tests.reliability_contract import Opener, ReliabilityContract

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared_url() -> Iterator[str]:
    with throwaway_database() as url:
        store = SqlStore(url)
        store.migrate()
        store.close()
        yield url


@pytest.fixture
def backend(shared_url: str) -> Iterator[Opener]:
    opened: list[SqlStore] = []

    def open_one() -> JobStore:
        store = SqlStore(shared_url)
        opened.append(store)
        return store

    first = SqlStore(shared_url)
    with first.engine.begin() as conn:
        for table in (jobs, job_attempts, dead_letters):
            conn.execute(table.delete())
    first.close()
    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(backend: Opener) -> JobStore:
    return backend()


@pytest.fixture
def concurrent_store(backend: Opener) -> Opener:
    return backend


class TestPostgresReliability(ReliabilityContract):
    pass
