"""Open the store named by the settings."""

from __future__ import annotations

from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sql import SqlStore


def open_store(settings: Settings) -> JobStore:
    url = settings.effective_database_url
    if url.startswith("memory://"):
        return MemoryStore()
    return SqlStore(url)
