"""Metrics computed from the job store: true across every worker and every restart.

``get_task_metrics()`` is the seed documents' dict; :class:`StoreCollector` is the
Prometheus view served at ``GET /metrics``. Both are *aggregated in the API at read
time* from the store (plus the broker for queue depths and Celery's inspect for
workers online): no worker keeps counters, so there is no multiprocess mode to
configure and nothing is lost when a worker restarts.

Definitions (per task):

* ``executed``: jobs that ran to an outcome — now SUCCEEDED, FAILED or DEAD;
* ``failed``: jobs that ended FAILED or DEAD;
* ``retried``: retries scheduled over all jobs — a job that ran ``n`` times and is
  waiting again (RETRYING/QUEUED/SCHEDULED) counts ``n``, any other ``n - 1``;
* ``last_execution``: the newest ``finished_at`` (or ``started_at`` of a running job).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from celery import Celery
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from conveyor.inspection import BROKER_ERRORS, queue_depths, workers_online
from conveyor.jobs import FINAL_STATES, JobState
from conveyor.settings import Settings, get_settings
from conveyor.store.base import JobStore, StoreError
from conveyor.store.factory import open_store
from conveyor.store.observability import (
    EXECUTED_STATES,
    FAILED_STATES,
    DurationKind,
    Histogram,
    JobCount,
)

log = structlog.get_logger("conveyor.metrics")

SOURCE_ERRORS: tuple[type[BaseException], ...] = (*BROKER_ERRORS, StoreError)

RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


# -- the seed's dict ------------------------------------------------------------------
@dataclass
class _TaskTotals:
    executed: int = 0
    failed: int = 0
    retried: int = 0
    last_execution: datetime | None = None

    def add(self, row: JobCount) -> None:
        if row.state in EXECUTED_STATES:
            self.executed += row.count
        if row.state in FAILED_STATES:
            self.failed += row.count
        self.retried += row.retries
        if row.last_activity is not None and (
            self.last_execution is None or row.last_activity > self.last_execution
        ):
            self.last_execution = row.last_activity

    def to_dict(self) -> dict[str, Any]:
        last = self.last_execution.isoformat() if self.last_execution else None
        return {
            "executed": self.executed,
            "failed": self.failed,
            "retried": self.retried,
            "last_execution": last,
        }


def task_metrics_from(counts: Iterable[JobCount]) -> dict[str, Any]:
    by_task: dict[str, _TaskTotals] = defaultdict(_TaskTotals)
    for row in counts:
        by_task[row.task].add(row)
    return {
        "total_executed": sum(t.executed for t in by_task.values()),
        "total_failed": sum(t.failed for t in by_task.values()),
        "total_retried": sum(t.retried for t in by_task.values()),
        "by_task": {name: by_task[name].to_dict() for name in sorted(by_task)},
    }


def get_task_metrics(store: JobStore | None = None) -> dict[str, Any]:
    """``{"total_executed", "total_failed", "total_retried", "by_task": {...}}`` from the store.

    Without ``store`` it opens the one configured by ``CONVEYOR_*`` settings.
    """
    if store is not None:
        return task_metrics_from(store.job_counts())
    own = open_store(get_settings())
    try:
        return task_metrics_from(own.job_counts())
    finally:
        own.close()


# -- Prometheus -----------------------------------------------------------------------
def _histogram(
    name: str, doc: str, rows: Sequence[Histogram], bounds: Sequence[float]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["task", "queue"])
    for row in rows:
        buckets = [(_le(b), float(n)) for b, n in zip(bounds, row.buckets, strict=True)]
        buckets.append(("+Inf", float(row.count)))
        family.add_metric([row.task, row.queue], buckets, row.total)
    return family


def _le(bound: float) -> str:
    return repr(float(bound))


def job_metrics(store: JobStore) -> Iterator[Metric]:
    """The families computed from the job store alone."""
    counts = store.job_counts()
    submitted = CounterMetricFamily(
        "conveyor_jobs_submitted", "Jobs submitted, by task and queue.", labels=["task", "queue"]
    )
    finished = CounterMetricFamily(
        "conveyor_jobs_finished",
        "Jobs that reached a final state, by task, queue and state.",
        labels=["task", "queue", "state"],
    )
    current = GaugeMetricFamily(
        "conveyor_jobs", "Jobs in each state now, by queue.", labels=["queue", "state"]
    )
    retries = CounterMetricFamily(
        "conveyor_job_retries", "Retries scheduled, by task and queue.", labels=["task", "queue"]
    )
    dead = GaugeMetricFamily(
        "conveyor_dead_letters",
        "Jobs in the DEAD state (dead letters), by queue.",
        labels=["queue"],
    )
    totals: dict[tuple[str, ...], float] = defaultdict(float)
    for row in counts:
        totals[("submitted", row.task, row.queue)] += row.count
        totals[("retries", row.task, row.queue)] += row.retries
        totals[("current", row.queue, row.state.value)] += row.count
        if row.state in FINAL_STATES:
            finished.add_metric([row.task, row.queue, row.state.value], row.count)
        if row.state is JobState.DEAD:
            totals[("dead", row.queue)] += row.count
    families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
        "submitted": submitted,
        "retries": retries,
        "current": current,
        "dead": dead,
    }
    for (kind, *labels), value in sorted(totals.items()):
        families[kind].add_metric(labels, value)
    yield from (submitted, finished, current, retries, dead)
    yield _histogram(
        "conveyor_job_run_seconds",
        "Run time of the last attempt of finished jobs.",
        store.duration_histograms("run", RUN_BUCKETS),
        RUN_BUCKETS,
    )
    yield _histogram(
        "conveyor_job_queue_wait_seconds",
        "Time from submit (or scheduled time) to the start of the first attempt.",
        store.duration_histograms("wait", WAIT_BUCKETS),
        WAIT_BUCKETS,
    )


def _source_up(results: dict[str, bool]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "conveyor_metrics_source_up",
        "1 when the source answered this scrape (store, broker, workers).",
        labels=["source"],
    )
    for source, ok in sorted(results.items()):
        family.add_metric([source], 1.0 if ok else 0.0)
    return family


class StoreCollector(Collector):
    """Every conveyor series, computed at scrape time (store + broker + Celery inspect)."""

    def __init__(self, settings: Settings, store: JobStore, app: Celery) -> None:
        self.settings = settings
        self.store = store
        self.app = app

    def _queue_families(self, depths: dict[str, int], paused_now: set[str]) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "conveyor_queue_depth", "Messages waiting in the broker, by queue.", labels=["queue"]
        )
        paused = GaugeMetricFamily(
            "conveyor_queue_paused",
            "1 when the queue is paused (POST /api/v1/queues/{name}/pause), else 0.",
            labels=["queue"],
        )
        for queue in self.settings.queues:
            if queue in depths:
                depth.add_metric([queue], float(depths[queue]))
            paused.add_metric([queue], 1.0 if queue in paused_now else 0.0)
        yield depth
        yield paused

    def _ask(self, fn: Callable[[], Any], source: str, up: dict[str, bool]) -> Any:
        try:
            value = fn()
        except SOURCE_ERRORS as exc:
            log.warning("metrics_source_failed", source=source, error=str(exc))
            up[source] = False
            return None
        up[source] = True
        return value

    def collect(self) -> Iterator[Metric]:
        up: dict[str, bool] = {}
        timeout = self.settings.inspect_timeout
        with ThreadPoolExecutor(max_workers=2) as pool:
            # the workers' ping waits its whole timeout: run it beside the rest
            online = pool.submit(
                self._ask, lambda: workers_online(self.app, timeout), "workers", up
            )
            depths = pool.submit(
                self._ask, lambda: queue_depths(self.app, self.settings.queues), "broker", up
            )
            families = self._ask(lambda: list(job_metrics(self.store)), "store", up)
            states = self._ask(self.store.list_queue_states, "store", up)
            workers = online.result()
            queues = depths.result()
        yield from families or ()
        paused_now = {state.name for state in states or () if state.paused}
        yield from self._queue_families(queues or {}, paused_now)
        if workers is not None:
            yield GaugeMetricFamily(
                "conveyor_workers_online", "Workers answering a ping.", value=float(workers)
            )
        yield _source_up(up)


def metrics_registry(settings: Settings, store: JobStore, app: Celery) -> CollectorRegistry:
    """A registry holding only conveyor's collector (no process metrics of the API)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(settings, store, app))
    return registry


__all__ = [
    "DurationKind",
    "StoreCollector",
    "get_task_metrics",
    "job_metrics",
    "metrics_registry",
    "task_metrics_from",
]
