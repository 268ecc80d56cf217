"""Read-only queries the dashboard needs: search with keyset paging, counts, throughput."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from conveyor.jobs import JobState

if TYPE_CHECKING:  # base.py imports this module for JobStore's bases
    from conveyor.store.base import JobPage

#: States counted as failures in throughput charts.
FAILURE_STATES = (JobState.FAILED, JobState.DEAD)


@dataclass(frozen=True, slots=True)
class JobQuery:
    """What the Jobs page filters on; every field is optional and they combine with AND.

    ``created_after`` is inclusive and ``created_before`` exclusive. ``text`` matches
    a case-insensitive substring of the arguments (as JSON), keyword arguments or
    the error message.
    """

    states: tuple[JobState, ...] = ()
    task: str | None = None
    queue: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class ThroughputBucket:
    """Jobs that finished in ``[start, start + bucket)``."""

    start: datetime
    succeeded: int = 0
    failed: int = 0


def bucket_index(at: datetime, since: datetime, bucket_seconds: int) -> int:
    """Which bucket (counting from ``since``) the moment ``at`` falls in."""
    return int((at - since).total_seconds() // bucket_seconds)


def empty_buckets(since: datetime, until: datetime, bucket_seconds: int) -> list[ThroughputBucket]:
    count = max(bucket_index(until, since, bucket_seconds), 0)
    step = timedelta(seconds=bucket_seconds)
    return [ThroughputBucket(since + i * step) for i in range(count)]


class DashboardStore(Protocol):
    def search_jobs(self, query: JobQuery, limit: int, cursor: str | None = None) -> JobPage:
        """Jobs matching ``query``, newest first, keyset-paged like ``list_jobs``."""
        ...

    def count_jobs_by_queue(self) -> Mapping[str, Mapping[JobState, int]]:
        """For every queue that has jobs: how many are in each state (absent = 0)."""
        ...

    def count_finished(
        self, since: datetime, until: datetime, bucket_seconds: int
    ) -> list[ThroughputBucket]:
        """Succeeded and failed (FAILED or DEAD) jobs per bucket of ``finished_at``.

        One bucket per ``bucket_seconds`` from ``since`` (inclusive) to ``until``
        (exclusive), empty ones included, oldest first.
        """
        ...
