"""The dashboard's queries on the in-memory store (the twin of sql_dashboard)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import datetime

from conveyor.jobs import Job, JobState
from conveyor.store.base import JobPage, decode_cursor, encode_cursor
from conveyor.store.dashboard import (
    FAILURE_STATES,
    JobQuery,
    ThroughputBucket,
    bucket_index,
    empty_buckets,
)


def _search_text(job: Job) -> str:
    # as the SQL store keeps JSON (ASCII, default separators); SQL LIKE folds ASCII case only
    return " ".join((json.dumps(list(job.args)), json.dumps(dict(job.kwargs)), job.error or ""))


def _matches_text(job: Job, needle: str) -> bool:
    hay = _search_text(job).lower()
    forms = {needle, json.dumps(needle)[1:-1]}
    return any(form.lower() in hay for form in forms)


def _matches(job: Job, query: JobQuery) -> bool:
    checks = (
        not query.states or job.state in query.states,
        not query.task or job.task == query.task,
        not query.queue or job.queue == query.queue,
        query.created_after is None or job.created_at >= query.created_after,
        query.created_before is None or job.created_at < query.created_before,
        not query.text or _matches_text(job, query.text),
    )
    return all(checks)


class MemoryDashboardMixin:
    """Mixed into MemoryStore; uses its ``_lock`` and ``_jobs``."""

    _lock: threading.RLock
    _jobs: dict[str, Job]

    def _all_jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def search_jobs(self, query: JobQuery, limit: int, cursor: str | None = None) -> JobPage:
        found = [job for job in self._all_jobs() if _matches(job, query)]
        found.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        if cursor is not None:
            after = decode_cursor(cursor)
            found = [j for j in found if (j.created_at, j.id) < after]
        limit = max(limit, 0)
        page = found[:limit]
        more = len(found) > limit
        return JobPage(page, encode_cursor(page[-1]) if more and page else None)

    def count_jobs_by_queue(self) -> Mapping[str, Mapping[JobState, int]]:
        counts: dict[str, dict[JobState, int]] = {}
        for job in self._all_jobs():
            per_state = counts.setdefault(job.queue, {})
            per_state[job.state] = per_state.get(job.state, 0) + 1
        return counts

    def count_finished(
        self, since: datetime, until: datetime, bucket_seconds: int
    ) -> list[ThroughputBucket]:
        buckets = empty_buckets(since, until, bucket_seconds)
        tallies = [[0, 0] for _ in buckets]
        for job in self._all_jobs():
            at = job.finished_at
            if at is None or not since <= at < until:
                continue
            index = bucket_index(at, since, bucket_seconds)
            if job.state is JobState.SUCCEEDED and index < len(tallies):
                tallies[index][0] += 1
            elif job.state in FAILURE_STATES and index < len(tallies):
                tallies[index][1] += 1
        return [
            ThroughputBucket(bucket.start, ok, bad)
            for bucket, (ok, bad) in zip(buckets, tallies, strict=True)
        ]
