"""The workflow/bulk/progress store contract on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.store.base import JobStore
from conveyor.store.sql import SqlStore
from tests.integration.test_store_sql import throwaway_database
from tests.workflow_store_contract import WorkflowStoreContract

pytestmark = pytest.mark.integration


@pytest.fixture
def store() -> Iterator[JobStore]:
    with throwaway_database() as url:
        opened = SqlStore(url)
        opened.migrate()
        yield opened
        opened.close()


class TestPostgresWorkflowStore(WorkflowStoreContract):
    pass
