"""The workflow/bulk/progress store contract on the in-memory store and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.store.base import JobStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sql import SqlStore
from tests.workflow_store_contract import WorkflowStoreContract


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    opened: JobStore = (
        MemoryStore() if request.param == "memory" else SqlStore(f"sqlite:///{tmp_path}/w.db")
    )
    opened.migrate()
    yield opened
    opened.close()


class TestWorkflowStore(WorkflowStoreContract):
    pass
