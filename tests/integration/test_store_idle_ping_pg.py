"""PostgreSQL: pooled connections are pinged only after sitting idle, and a store whose
connections were all killed (a PostgreSQL restart) still works afterwards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from conveyor.jobs import JobEvent, JobState
from conveyor.store import idle_ping
from conveyor.store.base import StoreError
from conveyor.store.sql import SqlStore
from tests.integration.test_store_sql import throwaway_database
from tests.store_contract import make_job

pytestmark = pytest.mark.integration


@pytest.fixture
def url() -> Iterator[str]:
    with throwaway_database() as found:
        yield found


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    opened = SqlStore(url)
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def pings(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per ping the pool sends."""
    sent: list[int] = []
    ping = store.engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        sent.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(store.engine.dialect, "do_ping", counted)
    return sent


def _kill_store_connections(url: str) -> None:
    """pg_terminate_backend every other connection to the database; wait until they are gone."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as admin:
        others = (
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        killed = admin.execute(f"SELECT count(pg_terminate_backend(pid)) {others}").fetchone()
        assert killed is not None and killed[0] > 0
        for _ in range(500):  # termination is asynchronous
            left = admin.execute(f"SELECT count(*) {others}").fetchone()
            if left is not None and left[0] == 0:
                return
            time.sleep(0.01)
        raise AssertionError("the killed connections did not go away")


def test_a_connection_used_a_moment_ago_is_not_pinged(store: SqlStore, pings: list[int]) -> None:
    store.create_job(make_job("a"))
    for _ in range(5):
        assert store.get_job("a") is not None
    store.apply_events([JobEvent("a", JobState.STARTED, attempt=1)])
    assert pings == []


def test_a_connection_idle_longer_is_pinged_once_per_checkout(
    store: SqlStore, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_job(make_job("a"))
    monkeypatch.setattr(idle_ping, "PING_AFTER_IDLE", 0.0)  # every pooled connection is "idle"
    assert store.get_job("a") is not None
    assert store.get_job("a") is not None
    assert len(pings) == 2


def test_killed_connections_are_replaced_after_the_idle_time(
    store: SqlStore, url: str, pings: list[int]
) -> None:
    store.create_job(make_job("a"))
    assert store.get_job("a") is not None
    _kill_store_connections(url)
    time.sleep(idle_ping.PING_AFTER_IDLE + 0.2)  # the pooled connection is now "idle"
    assert store.get_job("a") is not None  # the ping failed: a new connection served it
    assert pings
    store.create_job(make_job("b"))
    assert store.apply_events([JobEvent("b", JobState.STARTED, attempt=1)]) == 1


def test_within_the_idle_window_one_operation_fails_then_the_store_recovers(
    store: SqlStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idle_ping, "PING_AFTER_IDLE", 3600.0)  # never ping
    store.create_job(make_job("a"))
    assert store.get_job("a") is not None
    _kill_store_connections(url)
    with pytest.raises(StoreError):
        store.get_job("a")
    # the disconnect invalidated the pool's connections: the next operations reconnect
    assert store.apply_events([JobEvent("a", JobState.STARTED, attempt=1)]) == 1
    job = store.get_job("a")
    assert job is not None and job.state is JobState.STARTED
