"""The JobStore contract on PostgreSQL.

Uses ``CONVEYOR_TEST_POSTGRES_URL`` (default: trust auth on 127.0.0.1, database
``test``) only to create a throwaway database ``conveyor_test_<random>`` per use,
dropped afterwards. Skipped when PostgreSQL is unreachable, except under
``CI=true`` where that fails.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from conveyor.store.base import JobStore
from conveyor.store.schema import metadata
from conveyor.store.sql import SqlStore
from tests.batch_events_contract import BatchEventsContract
from tests.dashboard_store_contract import DashboardStoreContract
from tests.observability_contract import ObservabilityContract
from tests.store_contract import SqlStoreContract, StoreContract, make_job

pytestmark = pytest.mark.integration

BASE_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL unavailable at {make_url(BASE_URL)!r}: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@functools.cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (checked once per session), or None."""
    engine = create_engine(BASE_URL, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        return " ".join(str(exc.orig).split())
    finally:
        engine.dispose()
    return None


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A new, empty database; yields its URL and drops it afterwards."""
    problem = _postgres_problem()
    if problem is not None:
        _unavailable(problem)
    name = f"conveyor_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(BASE_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(BASE_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def migrated_store() -> Iterator[SqlStore]:
    """A migrated SqlStore on a throwaway database; closed, and the database dropped, after."""
    with throwaway_database() as url:
        store = SqlStore(url)
        try:
            store.migrate()
            yield store
        finally:
            store.close()


@pytest.fixture(scope="module")
def shared_url() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


@pytest.fixture
def store(shared_url: str) -> Iterator[JobStore]:
    opened = SqlStore(shared_url)
    opened.migrate()
    with opened.engine.begin() as conn:  # every table empty: each test starts clean
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    yield opened
    opened.close()


@pytest.fixture
def fresh_url() -> Iterator[str]:
    with throwaway_database() as url:
        yield url


class TestPostgresContract(StoreContract, ObservabilityContract, BatchEventsContract):
    pass


class TestPostgresStore(SqlStoreContract):
    def test_ids_compare_byte_wise(self, store: SqlStore) -> None:
        store.create_job(make_job("a"))
        with store.engine.connect() as conn:
            collation = conn.execute(
                text(
                    "SELECT collation_name FROM information_schema.columns "
                    "WHERE table_name = 'jobs' AND column_name = 'id'"
                )
            ).scalar()
        assert collation == "C"

    def test_timestamps_are_timestamptz(self, store: SqlStore) -> None:
        with store.engine.connect() as conn:
            types: dict[str, str] = dict(
                conn.execute(
                    text(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name = 'jobs' AND column_name LIKE '%\\_at'"
                    )
                ).all()
            )
        assert set(types.values()) == {"timestamp with time zone"}
        assert len(types) == 4

    def test_password_in_url_with_percent_escapes(self, fresh_url: str) -> None:
        # '%' in the URL must survive alembic's configparser interpolation
        url = make_url(fresh_url).set(query={"application_name": "conveyor%test"})
        store = SqlStore(url.render_as_string(hide_password=False))
        try:
            store.migrate()
            assert store.is_migrated()
        finally:
            store.close()


class TestPostgresDashboardStore(DashboardStoreContract):
    pass
