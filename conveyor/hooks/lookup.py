"""The job row of one run, read from the store at most once and shared by every hook.

Before this, the cancel gate, flow control, the completion callback and the
retry override each read the same row (up to four round trips per job). The
task runner now opens one :class:`JobLookup` per run; the first hook that needs
the row (the cancel gate, just before the run: so the state it sees is fresh)
reads it, and the others reuse it. They only use fields fixed at submit time
(arguments, ``rate_limit``, ``retry``, ``callback_url``), which a cached row
holds just as well.
"""

from __future__ import annotations

from datetime import datetime

from conveyor.jobs import Job
from conveyor.store.base import JobStore


class JobLookup:
    __slots__ = ("_job", "_loaded", "_store", "job_id", "started_at")

    def __init__(self, store: JobStore, job_id: str) -> None:
        self._store = store
        self.job_id = job_id
        self._job: Job | None = None
        self._loaded = False
        #: when the run was let through, if a gate decided it (the rate limiter logs this
        #: instant as the start its guard counts; the job's ``started_at`` must match it)
        self.started_at: datetime | None = None

    def get(self) -> Job | None:
        """The job (None when it is not in the store); StoreError when the store is down."""
        if not self._loaded:
            self._job = self._store.get_job(self.job_id)
            self._loaded = True
        return self._job

    @property
    def loaded(self) -> bool:
        return self._loaded
