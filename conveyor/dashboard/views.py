"""What each page shows, gathered from the store's named methods (no HTML here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from conveyor.dashboard.access import Viewer
from conveyor.dashboard.actions import ACTIONS, NOTICES, JobAction
from conveyor.dashboard.cache import TtlCache
from conveyor.dashboard.chart import throughput_chart
from conveyor.dashboard.filters import PAGE_SIZE, JobFilters
from conveyor.jobs import Job, JobState, utcnow
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.store.dashboard import FAILURE_STATES, JobQuery, ThroughputBucket
from conveyor.store.reliability import Attempt

#: Column order of the queue table.
STATE_COLUMNS = tuple(JobState)
RECENT_FAILURES = 10


@dataclass(frozen=True, slots=True)
class QueueRow:
    name: str
    counts: dict[JobState, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    label: str
    at: datetime


def _window(now: datetime, bucket_seconds: int, buckets: int) -> tuple[datetime, datetime]:
    """``buckets`` whole buckets ending with the one that holds ``now``."""
    epoch = now.timestamp()
    until_ts = (epoch // bucket_seconds + 1) * bucket_seconds
    until = now + timedelta(seconds=until_ts - epoch)
    return until - timedelta(seconds=bucket_seconds * buckets), until


#: (key, title, minutes per bucket, buckets, seconds the numbers may be cached)
CHARTS = (
    ("hour", "Last hour, jobs per minute", 1, 60, 0.0),
    ("day", "Last 24 hours, jobs per minute (15-minute average)", 15, 96, 60.0),
)
#: Seconds the per-queue counts may be cached (a full index scan on big tables).
QUEUE_COUNTS_TTL = 5.0


def _buckets(
    store: JobStore, cache: TtlCache, key: str, window: tuple[datetime, datetime, int], ttl: float
) -> list[ThroughputBucket]:
    def compute() -> list[ThroughputBucket]:
        return store.count_finished(*window)

    return cache.get(("chart", key), ttl, compute) if ttl else compute()


def overview(
    store: JobStore, settings: Settings, cache: TtlCache, now: datetime | None = None
) -> dict[str, Any]:
    """Throughput charts, per-queue counts and recent failures.

    The day chart and the queue counts read many rows on a busy store, so they
    are cached for a short while (CHARTS, QUEUE_COUNTS_TTL); the hour chart and
    the failures are always fresh.
    """
    now = now or utcnow()
    charts = []
    for key, title, bucket_minutes, count, ttl in CHARTS:
        since, until = _window(now, bucket_minutes * 60, count)
        buckets = _buckets(store, cache, key, (since, until, bucket_minutes * 60), ttl)
        charts.append(throughput_chart(key, title, buckets, bucket_minutes))
    counts = cache.get("queue-counts", QUEUE_COUNTS_TTL, store.count_jobs_by_queue)
    names = list(settings.queues) + sorted(set(counts) - set(settings.queues))
    queues = [QueueRow(name, dict(counts.get(name, {}))) for name in names]
    failures = store.search_jobs(JobQuery(states=FAILURE_STATES), RECENT_FAILURES).items
    return {
        "charts": charts,
        "queues": queues,
        "states": STATE_COLUMNS,
        "failures": failures,
        "generated_at": now,
    }


def job_list(store: JobStore, settings: Settings, filters: JobFilters) -> dict[str, Any]:
    page = store.search_jobs(filters.query, PAGE_SIZE, filters.cursor)
    return {
        "jobs": page.items,
        "filters": filters,
        "next_link": filters.link(page.next_cursor) if page.next_cursor else None,
        "first_page": filters.cursor is None,
        "states": STATE_COLUMNS,
        "queue_names": settings.queues,
    }


def timeline(job: Job, attempts: Sequence[Attempt] = ()) -> list[TimelineEntry]:
    """The job's state changes, from its own times and each recorded attempt."""
    entries = [TimelineEntry("Created", job.created_at)]
    if job.scheduled_for is not None:
        entries.append(TimelineEntry("Due", job.scheduled_for))
    ended = set()
    for attempt in attempts:
        if attempt.started_at is not None:
            where = f" on {attempt.worker}" if attempt.worker else ""
            entries.append(
                TimelineEntry(f"Attempt {attempt.attempt} started{where}", attempt.started_at)
            )
        if attempt.finished_at is not None and attempt.state is not JobState.STARTED:
            why = f" ({attempt.reason})" if attempt.reason else ""
            label = f"Attempt {attempt.attempt}: {attempt.state.value}{why}"
            entries.append(TimelineEntry(label, attempt.finished_at))
            ended.add(attempt.finished_at)
    if not attempts and job.started_at is not None:
        entries.append(TimelineEntry(f"Started (attempt {job.attempts})", job.started_at))
    if job.finished_at is not None:
        if job.finished_at not in ended:
            entries.append(TimelineEntry(f"Finished: {job.state.value}", job.finished_at))
    elif job.updated_at != job.created_at:
        entries.append(TimelineEntry(f"Now {job.state.value}", job.updated_at))
    return sorted(entries, key=lambda entry: entry.at)


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int | None
    message: str | None

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return max(0, min(100, round(100 * self.done / self.total)))


def progress_of(job: Job) -> Progress | None:
    report = job.progress
    if not report:
        return None
    done, total = report.get("done"), report.get("total")
    return Progress(
        done=done if isinstance(done, int) else 0,
        total=total if isinstance(total, int) else None,
        message=str(report["message"]) if report.get("message") else None,
    )


def action_notice(key: str | None) -> str | None:
    """The sentence for a ``?done=`` key set after an action (unknown keys say nothing)."""
    return NOTICES.get(key or "")


def available_actions(job: Job, viewer: Viewer) -> list[JobAction]:
    """Actions that apply to ``job`` and that ``viewer`` may take (none for read-only keys)."""
    return [a for a in ACTIONS if a.applies(job) and viewer.principal.allows(a.scope)]


def job_detail(
    store: JobStore, job: Job, viewer: Viewer, replayed_from: str | None
) -> dict[str, Any]:
    """Everything on a job's page: attempts, timeline, progress and replay links."""
    original_id = job.replay_of or replayed_from
    original = store.get_job(original_id) if original_id else None
    attempts = store.list_attempts([job.id]).get(job.id, [])
    dead = store.get_dead_letter(job.id) if job.state is JobState.DEAD else None
    replayed_as = store.get_job(dead.replayed_job_id) if dead and dead.replayed_job_id else None
    return {
        "job": job,
        "timeline": timeline(job, attempts),
        "attempts": sorted(attempts, key=lambda a: a.attempt, reverse=True),
        "progress": progress_of(job),
        "actions": available_actions(job, viewer),
        "original": original,
        "original_id": original_id,
        "dead_letter": dead,
        "replayed_as": replayed_as,
    }
