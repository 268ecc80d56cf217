"""The scheduler: a Celery Beat ``Scheduler`` backed by the job store, with a leader lease.

Run any number of ``conveyor scheduler`` processes: each pass (at most
``scheduler_tick`` seconds apart) renews or tries to take the leader lease, and
only the leader submits. Every due run is first *claimed* in the store —
(schedule, due time) is unique — so even two leaders at once cannot produce two
jobs for one period. Schedules are re-read on every pass, so edits made through
the API take effect without a restart.

A run more than one lease TTL late (no scheduler was leading at its time) is
*missed*: policy ``skip`` moves on to the next future time, ``run_once`` runs it
once. Either way the next run is computed from now, so there is never a burst.

``ConveyorScheduler.extra_ticks`` are called on the leader on every pass as
``callback(store, submitter, now=now)`` (e.g. releasing delayed jobs).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar

import structlog
from celery import Celery
from celery.beat import Scheduler

from conveyor.delays import release_due
from conveyor.errors import ArgumentsInvalid, BrokerUnavailable, SubmitRefused, TaskNotFound
from conveyor.jobs import utcnow
from conveyor.lease import Lease, new_holder_id, open_lease
from conveyor.schedule_manager import ScheduleManager, declarations, request_for
from conveyor.schedules import Schedule
from conveyor.settings import Settings
from conveyor.store.base import JobStore, StoreError
from conveyor.store.factory import open_store
from conveyor.submit import Submitter
from conveyor.task import TaskRegistry, registry

log = structlog.get_logger("conveyor.scheduler")

LEASE_NAME = "scheduler"
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
#: Claims are kept this long after they were made (one matters only while its period is
#: still the schedule's next run, i.e. for one pass or one lease TTL).
RUN_RETENTION = timedelta(days=1)
PRUNE_EVERY = timedelta(minutes=10)
#: Shortest sleep between passes when a run is due very soon.
MIN_SLEEP = 0.01

#: Called on the leader every pass as ``callback(store, submitter, now=now)``.
TickCallback = Callable[..., object]


class ScheduleRunner:
    """One scheduler pass at a time: lease, due schedules, tick callbacks. No Beat needed."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        submitter: Submitter,
        lease: Lease,
        *,
        callbacks: Sequence[TickCallback] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.submitter = submitter
        self.lease = lease
        self.callbacks = list(callbacks)
        self.clock = clock
        self.is_leader = False
        self._announced = False
        self._next_prune: datetime | None = None
        #: a run of this pass was deferred (broker down): wait a whole tick before retrying
        self._deferred = False
        self.missed_after = settings.scheduler_lease_ttl + 2 * settings.scheduler_tick

    @property
    def holder(self) -> str:
        return self.lease.holder

    def tick(self) -> float:
        """One pass; returns the seconds to sleep before the next one."""
        now = self.clock()
        self._deferred = False
        if not self._lead():
            return self.settings.scheduler_tick
        try:
            upcoming = [self.run_if_due(s, now) for s in self.store.list_schedules()]
        except StoreError as exc:
            log.warning("scheduler_store_unavailable", error=str(exc))
            return self.settings.scheduler_tick
        self._run_callbacks(now)
        self._prune(now)
        wake = [due for due in upcoming if due is not None]
        held = self._next_held_job()
        if held is not None:
            wake.append(held)
        return self._sleep(wake)

    def _next_held_job(self) -> datetime | None:
        """When the next SCHEDULED job is to be released (its due time less
        ``release_ahead``), if after now: the pass that releases it starts then, not up to
        a tick later. (One already due and still held, e.g. the
        broker refused it, waits for the next tick as before.)"""
        try:
            due = self.store.next_due_at()
        except StoreError as exc:
            log.warning("scheduler_store_unavailable", error=str(exc))
            return None
        if due is None:
            return None
        release_at = due - timedelta(seconds=self.settings.release_ahead)
        return release_at if release_at > self.clock() else None

    def _lead(self) -> bool:
        leading = self.lease.acquire()
        if leading != self.is_leader:
            event = "scheduler_leader_elected" if leading else "scheduler_leader_lost"
            log.info(event, holder=self.holder, lease=self.lease.name)
            self.is_leader = leading
        elif not leading and not self._announced:
            log.info("scheduler_standby", holder=self.holder, lease=self.lease.name)
        self._announced = True
        return leading

    def _sleep(self, upcoming: Sequence[datetime]) -> float:
        """Until the next due run, at most a tick (and a whole tick after a deferred run)."""
        if not upcoming:
            return self.settings.scheduler_tick
        seconds = (min(upcoming) - self.clock()).total_seconds()
        if seconds <= 0:
            # already due again: this pass outlasted the gap to the next period (run it now),
            # or a run was deferred because the broker is down (try again a tick later)
            return self.settings.scheduler_tick if self._deferred else MIN_SLEEP
        return min(self.settings.scheduler_tick, max(seconds, MIN_SLEEP))

    def _prune(self, now: datetime) -> None:
        if self._next_prune is not None and now < self._next_prune:
            return
        self._next_prune = now + PRUNE_EVERY
        try:
            pruned = self.store.prune_schedule_runs(now - RUN_RETENTION)
        except StoreError as exc:
            log.warning("scheduler_store_unavailable", error=str(exc))
            return
        if pruned:
            log.info("schedule_runs_pruned", count=pruned)

    def _run_callbacks(self, now: datetime) -> None:
        for callback in self.callbacks:
            try:
                callback(self.store, self.submitter, now=now)
            except Exception as exc:  # one failing callback must not stop the scheduler
                log.error("scheduler_tick_failed", callback=repr(callback), error=str(exc))

    def run_if_due(self, schedule: Schedule, now: datetime) -> datetime | None:
        """Run (or skip) ``schedule`` if it is due; returns when it is next due, if ever."""
        due = schedule.next_run_at
        if not schedule.enabled or due is None or due > now:
            return due if schedule.enabled else None
        late = (now - due).total_seconds()
        if late > self.missed_after and schedule.missed == "skip":
            log.info(
                "schedule_run_missed", schedule=schedule.name, due_at=due.isoformat(), late=late
            )
        elif not self._submit(schedule, due, now):
            self._deferred = True
            return due  # the broker is down: the same period is tried again next pass
        upcoming = schedule.advance(due, now)
        self.store.set_schedule_next_run(schedule.name, schedule.version, upcoming)
        return upcoming

    def _submit(self, schedule: Schedule, due: datetime, now: datetime) -> bool:
        """Claim the period and submit its job; False when it should be tried again."""
        if not self.store.claim_schedule_run(schedule.name, due, self.holder, now):
            log.info("schedule_run_already_claimed", schedule=schedule.name, due_at=due.isoformat())
            return True
        try:
            job = self.submitter.submit(request_for(schedule))
        except BrokerUnavailable as exc:
            self.store.unclaim_schedule_run(schedule.name, due)
            log.warning("schedule_run_deferred", schedule=schedule.name, error=str(exc))
            return False
        except (TaskNotFound, ArgumentsInvalid, SubmitRefused) as exc:
            log.error(
                "schedule_run_refused",
                schedule=schedule.name,
                due_at=due.isoformat(),
                error=str(exc),
            )
            return True
        self.store.record_schedule_run(schedule.name, job.id, now, due)
        log.info(
            "schedule_run_submitted", schedule=schedule.name, job_id=job.id, due_at=due.isoformat()
        )
        return True

    def close(self) -> None:
        if self.is_leader:
            self.lease.release()
            self.is_leader = False
        log.info("scheduler_stopped", holder=self.holder)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGTERM/SIGINT until the block ends, so a stop never leaves a run half done
    (claimed but not submitted). Only the main thread can do this; elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class ConveyorScheduler(Scheduler):  # type: ignore[misc]
    """Celery Beat's scheduler class for conveyor: ``conveyor scheduler`` uses it."""

    #: Extra work done by the leader on every pass: ``callback(store, submitter, now=now)``.
    extra_ticks: ClassVar[list[TickCallback]] = [release_due]
    tasks: ClassVar[TaskRegistry] = registry

    def __init__(self, app: Celery, *args: Any, **kwargs: Any) -> None:
        self.runner: ScheduleRunner | None = None
        self._store: JobStore | None = None
        super().__init__(app, *args, **kwargs)

    @property
    def settings(self) -> Settings:
        settings: Settings = self.app.conveyor_settings
        return settings

    def setup_schedule(self) -> None:
        settings = self.settings
        store = open_store(settings)
        self._store = store
        submitter = Submitter(settings, store, self.app, self.tasks)
        ScheduleManager(store, submitter).sync(declarations(self.tasks, settings))
        lease = open_lease(settings, store, LEASE_NAME, new_holder_id())
        self.runner = ScheduleRunner(
            settings, store, submitter, lease, callbacks=type(self).extra_ticks
        )
        self.max_interval = settings.scheduler_tick
        log.info("scheduler_started", holder=lease.holder, lease=type(lease).__name__)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.runner is None:
            self.setup_schedule()
        assert self.runner is not None
        with signals_deferred():
            return self.runner.tick()

    @property
    def schedule(self) -> dict[str, Any]:
        return {}  # schedules live in the job store, not in Beat's own entries

    def sync(self) -> None:
        return None

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
        if self._store is not None:
            self._store.close()

    @property
    def info(self) -> str:
        return "conveyor job store (leader lease)"
