"""The workflow/bulk/progress store contract on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.store.base import JobStore
from tests.integration.test_store_sql import migrated_store
from tests.workflow_store_contract import WorkflowStoreContract

pytestmark = pytest.mark.integration


@pytest.fixture
def store() -> Iterator[JobStore]:
    with migrated_store() as opened:
        yield opened


class TestPostgresWorkflowStore(WorkflowStoreContract):
    pass
