"""What the example applications' tests share: a fresh PostgreSQL database with the
example's tables, and an InlineConveyor whose job store lives in the same database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from conveyor.catalog.database import engine_for
from conveyor.store import open_store
from conveyor.testing import InlineConveyor, inline_settings
from tests.support.services import fresh_postgres_database


@contextmanager
def example_database(create_tables: Callable[[Engine], None]) -> Iterator[str]:
    """A fresh PostgreSQL database holding the example's tables; yields its URL."""
    with fresh_postgres_database() as url:
        create_tables(engine_for(url))
        yield url


@contextmanager
def inline_conveyor(database_url: str, imports: list[str]) -> Iterator[InlineConveyor]:
    """An InlineConveyor running the example's tasks, its job store in ``database_url``."""
    settings = inline_settings(database_url=database_url, imports=imports)
    store = open_store(settings)
    store.migrate()
    try:
        yield InlineConveyor(settings, store)
    finally:
        store.close()
        engine_for(database_url).dispose()
