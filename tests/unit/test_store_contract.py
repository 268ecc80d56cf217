"""The JobStore contract on the stores that need no server: in-memory and SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.store.base import JobStore, StoreError
from conveyor.store.memory import MemoryStore
from conveyor.store.sql import SqlStore
from tests.batch_events_contract import BatchEventsContract
from tests.observability_contract import ObservabilityContract
from tests.store_contract import SqlStoreContract, StoreContract, make_job


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    opened: JobStore = (
        MemoryStore() if request.param == "memory" else SqlStore(f"sqlite:///{tmp_path}/jobs.db")
    )
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture
def fresh_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/fresh.db"


class TestStoreContract(StoreContract, ObservabilityContract, BatchEventsContract):
    pass


class TestSqliteStore(SqlStoreContract):
    def test_creates_the_parent_directory(self, tmp_path: Path) -> None:
        path = tmp_path / "deep" / "er" / "conveyor.db"
        store = SqlStore(f"sqlite:///{path}")
        try:
            store.migrate()
            assert path.exists()
        finally:
            store.close()

    def test_pragmas(self, tmp_path: Path) -> None:
        store = SqlStore(f"sqlite:///{tmp_path}/p.db")
        try:
            with store.engine.connect() as conn:
                values = {
                    name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")
                }
        finally:
            store.close()
        assert values == {
            "journal_mode": "wal",
            "busy_timeout": 30000,
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
        }

    def test_naive_storage_is_utc(self, tmp_path: Path) -> None:
        path = tmp_path / "utc.db"
        store = SqlStore(f"sqlite:///{path}")
        try:
            store.migrate()
            store.create_job(make_job("j"))
        finally:
            store.close()
        with sqlite3.connect(path) as raw:
            (created,) = raw.execute("SELECT created_at FROM jobs").fetchone()
        raw.close()
        assert created == "2024-05-01 12:00:00.123456"

    def test_in_memory_database(self) -> None:
        store = SqlStore("sqlite://")
        try:
            store.migrate()
            store.create_job(make_job("m"))
            assert store.get_job("m") is not None
        finally:
            store.close()


def test_unreachable_postgres_raises_a_clear_store_error() -> None:
    store = SqlStore("postgresql+psycopg://conveyor:s3cret-pw@127.0.0.1:1/conveyor")
    try:
        with pytest.raises(StoreError) as info:
            store.ping()
    finally:
        store.close()
    message = str(info.value)
    assert message.startswith("job store unreachable at postgresql+psycopg://conveyor:***@")
    assert "127.0.0.1:1/conveyor" in message
    assert "s3cret-pw" not in message
    assert "\n" not in message


def test_every_operation_on_an_unreachable_store_raises_store_error() -> None:
    store = SqlStore("postgresql+psycopg://postgres@127.0.0.1:1/conveyor")
    try:
        with pytest.raises(StoreError, match="unreachable"):
            store.get_job("x")
        with pytest.raises(StoreError, match="unreachable"):
            store.migrate()
        with pytest.raises(StoreError, match="unreachable"):
            store.is_migrated()
    finally:
        store.close()


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://host/db"])
def test_invalid_url_raises_store_error(url: str) -> None:
    with pytest.raises(StoreError, match="invalid job store URL"):
        SqlStore(url)


def test_postgres_scheme_means_psycopg() -> None:
    store = SqlStore("postgres://u:pw@127.0.0.1:1/db")
    try:
        assert store.url == "postgresql+psycopg://u:***@127.0.0.1:1/db"
    finally:
        store.close()
