"""JobPruning on the in-memory and SQLite stores."""

from __future__ import annotations

from tests.prune_contract import PruneContract
from tests.unit.test_store_contract import store

__all__ = ["store"]


class TestPruneContract(PruneContract):
    pass
