"""SQL implementation of JobPruning (mixed into SqlStore)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import Connection, delete

from conveyor.jobs import JobState
from conveyor.store.prune import PRUNABLE_STATES
from conveyor.store.schema import jobs


class SqlPruning:
    def _tx(self, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def prune_jobs(self, before: datetime, states: Iterable[JobState] = PRUNABLE_STATES) -> int:
        values = sorted(state.value for state in states)
        if not values:
            return 0
        query = delete(jobs).where(jobs.c.state.in_(values), jobs.c.updated_at < before)
        with self._tx(write=True) as conn:
            return int(conn.execute(query).rowcount or 0)
