"""Flow control before every run: per-key concurrency slots, then the rate-limit token.

A job over a limit is not failed and uses no attempt. When its rate-limit token
is due within ``max_sleep`` seconds (the default hooks use ``SLEEP_BELOW``), the
worker keeps the job and waits for it in place (the job shows ``RETRYING`` /
``rate_limited`` meanwhile): a broker round trip (publish with a countdown,
receive, ack) costs more than such a wait, and a backlog put back one by one
made due jobs wait behind it (docs/benchmarks.md). Otherwise
the gate defers it (the message is published again with a countdown; its token
stays reserved) and the job shows ``RETRYING`` with reason ``rate_limited`` or
``concurrency_limited`` until it runs. The
concurrency slot a running job holds is renewed by a background thread and
released when the run ends (success, retry or failure); a crashed worker's
slot expires after ``concurrency_lease`` seconds.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from conveyor.errors import ArgumentsInvalid
from conveyor.gate import RUN, Gate
from conveyor.hooks.base import Hook, RunContext
from conveyor.jobs import Job, JobEvent, JobState
from conveyor.limiter import Limiter
from conveyor.policies.ratelimit import Limit, submit_limit
from conveyor.store.base import Failure, JobStore
from conveyor.task import TaskRegistry, TaskSpec, registry

log = structlog.get_logger("conveyor.flow")

#: how long a run waits when the limiter (Redis or the store) cannot be asked
UNAVAILABLE_DEFER = 5.0
#: a rate-limit wait up to this long is spent in the worker instead of a broker round trip
SLEEP_BELOW = 1.0
#: the most a run spends waiting in place for its token (several short waits in a row)
SLEEP_TOTAL = 3.0


class LeaseRenewer:
    """Renews the concurrency slots this process holds, every third of the lease."""

    def __init__(self, limiter: Limiter, interval: float) -> None:
        self.limiter = limiter
        self.interval = interval
        self.held: dict[str, str] = {}  # job id -> slot key
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, job_id: str, key: str) -> None:
        with self._lock:
            self.held[job_id] = key
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="conveyor-leases", daemon=True
                )
                self._thread.start()

    def drop(self, job_id: str) -> str | None:
        with self._lock:
            return self.held.pop(job_id, None)

    def _run(self) -> None:
        event = threading.Event()
        while not event.wait(self.interval):
            with self._lock:
                leases = [(key, job_id) for job_id, key in self.held.items()]
            try:
                self.limiter.renew(leases)
            except Exception as exc:  # keep renewing; a lease outlives a short outage
                log.warning("lease_renew_failed", error=str(exc), leases=len(leases))


class FlowHook(Hook):
    def __init__(
        self,
        store: JobStore,
        limiter: Limiter,
        lease: float,
        tasks: TaskRegistry = registry,
        *,
        max_sleep: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.limiter = limiter
        self.tasks = tasks
        self.max_sleep = max_sleep
        self.sleep = sleep
        self.renewer = LeaseRenewer(limiter, lease / 3)

    # -- before a run --------------------------------------------------------------
    def before_run(self, ctx: RunContext) -> Gate:
        if ctx.task not in self.tasks:
            return RUN
        spec = self.tasks.get(ctx.task)
        try:
            job = ctx.job(self.store)
            limit = _limit_for(spec, job)
            key = _slot_key(spec, job)
            if limit is None and key is None:
                return RUN
            gate = self._decide(ctx, spec, limit, key)
        except Exception as exc:  # Redis or the store is down: wait rather than overrun
            log.warning("flow_unavailable", job_id=ctx.job_id, error=str(exc))
            return Gate.defer(UNAVAILABLE_DEFER, "flow_unavailable")
        if not gate.runs:
            self._record_wait(ctx, gate)
        return gate

    def _decide(
        self, ctx: RunContext, spec: TaskSpec, limit: Limit | None, key: str | None
    ) -> Gate:
        if key is not None and spec.concurrency is not None:
            slot = self.limiter.acquire(key, ctx.job_id, spec.concurrency.limit)
            if not slot.acquired:
                wait = slot.wait * random.uniform(1.0, 1.3)
                return Gate.defer(wait, "concurrency_limited")
        if limit is not None:
            wait, decided = self._take(ctx, limit)
            if wait > 0:
                if key is not None:
                    self.limiter.release(key, ctx.job_id)
                return Gate.defer(wait, "rate_limited")
            if ctx.lookup is not None:  # the start the guard logged is the one recorded
                ctx.lookup.started_at = datetime.fromtimestamp(decided, UTC)
        if key is not None:
            self.renewer.hold(ctx.job_id, key)
        return RUN

    def _take(self, ctx: RunContext, limit: Limit) -> tuple[float, float]:
        """Take the token (wait, decision time), waiting in place while it is due soon.

        A wait leaves the token reserved for this job, so taking again once it is due
        runs it (unless the guard window is full: then another short wait). The job is
        shown as ``RETRYING`` / ``rate_limited`` while it waits (written during the wait).
        """
        slept = 0.0
        wait, decided = self.limiter.take_at(limit.bucket, limit.parsed, ctx.job_id)
        while 0 < wait <= self.max_sleep and slept + wait <= SLEEP_TOTAL:
            until = time.monotonic() + wait
            if not slept:
                self._record_wait(ctx, Gate.defer(wait, "rate_limited"))
            self.sleep(max(until - time.monotonic(), 0.0))
            slept += wait
            wait, decided = self.limiter.take_at(limit.bucket, limit.parsed, ctx.job_id)
        return wait, decided

    def _record_wait(self, ctx: RunContext, gate: Gate) -> None:
        """Written before the message is published again, so it cannot overtake the next run."""
        log.info("job_deferred", job_id=ctx.job_id, reason=gate.reason, countdown=gate.countdown)
        try:
            self.store.apply_events([JobEvent(ctx.job_id, JobState.RETRYING, reason=gate.reason)])
        except Exception as exc:  # the job still waits; only its displayed state lags
            log.warning("flow_record_failed", job_id=ctx.job_id, error=str(exc))

    # -- after a run: give the slot back -------------------------------------------
    def _release(self, ctx: RunContext) -> None:
        key = self.renewer.drop(ctx.job_id)
        if key is not None:
            self.limiter.release(key, ctx.job_id)

    def on_success(self, ctx: RunContext, result: Any) -> None:
        self._release(ctx)

    def on_retry(self, ctx: RunContext, failure: Failure, delay: float | None) -> None:
        self._release(ctx)

    def on_failure(self, ctx: RunContext, failure: Failure, state: JobState) -> None:
        self._release(ctx)


def _limit_for(spec: TaskSpec, job: Job | None) -> Limit | None:
    if job is not None and job.rate_limit:
        return submit_limit(spec.name, job.rate_limit)
    return spec.rate_limit


def _slot_key(spec: TaskSpec, job: Job | None) -> str | None:
    if spec.concurrency is None or job is None:
        return None
    try:
        values = spec.validate(job.args, job.kwargs)
    except ArgumentsInvalid:
        return None  # the run itself fails on these arguments; no slot to wait for
    return spec.concurrency.slot_key(spec.name, values)
