"""The scheduler's store operations on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.store.base import JobStore
from conveyor.store.sql import SqlStore
from tests.schedule_store_contract import ScheduleStoreContract
from tests.support.services import fresh_postgres_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def store(shared_url: str) -> Iterator[JobStore]:
    opened = SqlStore(shared_url)
    opened.migrate()
    for schedule in opened.list_schedules():
        opened.delete_schedule(schedule.name)
    for name in ("leader", "other"):
        for holder in ("a", "b"):
            opened.release_lease(name, holder)
    yield opened
    opened.close()


class TestScheduleStorePostgres(ScheduleStoreContract):
    pass
