"""JobPruning on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.integration.test_store_sql import shared_url, store
from tests.prune_contract import PruneContract

pytestmark = pytest.mark.integration

__all__ = ["shared_url", "store"]


class TestPostgresPruneContract(PruneContract):
    pass
