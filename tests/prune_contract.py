"""JobPruning contract: every store deletes exactly the old finished jobs.

Not collected by itself: subclass :class:`PruneContract` and provide ``store``
(a migrated, empty JobStore).
"""

from __future__ import annotations

from datetime import timedelta

from conveyor.jobs import JobState
from conveyor.store.base import JobStore
from tests.store_contract import T0, make_job


def _fill(store: JobStore) -> None:
    old = T0 - timedelta(days=40)
    for state in JobState:
        store.create_job(make_job(f"old-{state.value}", state=state, updated_at=old))
        store.create_job(make_job(f"new-{state.value}", state=state, updated_at=T0))


class PruneContract:
    def test_prunes_only_old_finished_jobs_by_default(self, store: JobStore) -> None:
        _fill(store)
        removed = store.prune_jobs(T0 - timedelta(days=30))
        assert removed == 4
        for state in JobState:
            old = store.get_job(f"old-{state.value}")
            assert (old is None) is state.is_final, state
            assert store.get_job(f"new-{state.value}") is not None

    def test_prunes_the_states_asked_for(self, store: JobStore) -> None:
        _fill(store)
        removed = store.prune_jobs(T0 - timedelta(days=30), [JobState.FAILED, JobState.QUEUED])
        assert removed == 2
        assert store.get_job("old-FAILED") is None
        assert store.get_job("old-QUEUED") is None
        assert store.get_job("old-SUCCEEDED") is not None

    def test_nothing_to_prune(self, store: JobStore) -> None:
        _fill(store)
        assert store.prune_jobs(T0 - timedelta(days=60)) == 0
        assert store.prune_jobs(T0, []) == 0
