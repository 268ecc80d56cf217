"""In-memory implementation of JobPruning (mixed into MemoryStore)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime

from conveyor.jobs import Job, JobState
from conveyor.store.prune import PRUNABLE_STATES


class MemoryPruning:
    _lock: threading.RLock
    _jobs: dict[str, Job]

    def prune_jobs(self, before: datetime, states: Iterable[JobState] = PRUNABLE_STATES) -> int:
        wanted = frozenset(states)
        with self._lock:
            doomed = [
                job_id
                for job_id, job in self._jobs.items()
                if job.state in wanted and job.updated_at < before
            ]
            for job_id in doomed:
                del self._jobs[job_id]
        return len(doomed)
