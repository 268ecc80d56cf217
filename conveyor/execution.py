"""``ConveyorTask``: the Celery base class every conveyor task runs under.

It validates the arguments again in the worker, asks the hooks whether the job
may run at all (``before_run``: cancelled jobs are skipped, flow control may
defer), runs sync or async functions, applies the retry policy (the task's,
with the submit's override) and walks the hook list at each moment of a run
(start, success, retry, failure). Nothing else lives here.
"""

from __future__ import annotations

from typing import Any

import structlog
from billiard.einfo import ExceptionInfo
from celery import Task, current_app, signals
from celery.exceptions import Ignore, Retry, TimeLimitExceeded
from pydantic_core import to_jsonable_python

from conveyor import acks
from conveyor.context import JobContext, running
from conveyor.errors import ArgumentsInvalid, PermanentError
from conveyor.gate import RUN, Gate, GateAction
from conveyor.hooks.base import RunContext
from conveyor.hooks.lookup import JobLookup
from conveyor.jobs import JobState
from conveyor.policies.outcome import Outcome, effective_policy, outcome
from conveyor.policies.retry import RetryPolicy
from conveyor.routing import resolve_queue
from conveyor.runtime import flush_runtime, runtime_for
from conveyor.store.base import Failure, StoreError
from conveyor.submit import WORKFLOW_HEADER
from conveyor.task import TaskSpec
from conveyor.timeouts import TimeoutInfo, current_timeout

log = structlog.get_logger("conveyor.worker")

#: what a failure without a recorded decision becomes (e.g. an error outside the task body)
_UNDECIDED = Outcome(JobState.FAILED, reason="error")


def _failure(exc: BaseException, einfo: ExceptionInfo | None, reason: str = "") -> Failure:
    tb = einfo.traceback if einfo is not None else None
    return Failure(
        error=str(exc) or repr(exc),
        error_type=type(exc).__name__,
        traceback=tb,
        reason=reason or None,
    )


def jsonable_result(result: Any, max_bytes: int) -> Any:
    """The result as JSON-ready data, truncated to a preview if it is too large."""
    value = to_jsonable_python(result, fallback=repr)
    text = repr(value)
    if len(text) > max_bytes:
        return {"truncated": True, "preview": text[:max_bytes]}
    return value


class ConveyorTask(Task):  # type: ignore[misc]
    conveyor_spec: TaskSpec
    max_retries = None  # retry decisions come from the task's RetryPolicy
    typing = False  # conveyor validates arguments itself, with field-level errors
    Request = "conveyor.request:ConveyorRequest"  # hard time limits, deferred acks
    #: the job store holds each run's state and result; Celery's result backend would
    #: only duplicate them at the cost of two writes per job (STARTED and the result)
    ignore_result = True

    # -- the run ------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        spec = self.conveyor_spec
        job = JobContext(
            job_id=self.request.id or "",
            task=self.name,
            attempt=self.attempt,
            report=runtime_for(self.app).recorder.record,
        )
        try:
            values = self._validated(args, kwargs)
            with running(job):
                result = spec.invoke(values)
        except Retry:
            raise
        except Exception as exc:
            self._retry_or_raise(exc)
            raise
        if not self.request.called_directly:
            self._record_success(result)
        return result

    def _record_success(self, result: Any) -> None:
        """Record the success (and wait until it is stored) before Celery stores its result.

        If the process dies after Celery stored SUCCESS, Celery acknowledges the message
        without running it again, so the job store must already know by then.
        """
        runtime = runtime_for(self.app)
        limit = runtime.settings.result_max_bytes
        self._each_hook("on_success", self.request.id or "", jsonable_result(result, limit))
        if acks.run_pipe() is None:
            self._before_ack()

    def _before_ack(self) -> None:
        """The run's last event is recorded: the message's ack must wait until it is stored.

        In a worker that defers acks (:mod:`conveyor.acks`) the recorder
        tells the main process once the run is stored; elsewhere this thread stores the
        job's events now and returns when they are.
        """
        runtime = runtime_for(self.app)
        if not runtime.settings.record_before_ack or self.request.called_directly:
            return
        job_id = self.request.id or ""
        pipe = acks.run_pipe()
        if pipe is not None:
            key = acks.run_key(job_id, int(self.request.retries or 0))
            runtime.recorder.when_stored(job_id, lambda: pipe.notify([key]))
        elif not runtime.recorder.flush_job(job_id):
            log.warning("record_flush_timeout", job_id=job_id)

    def _validated(self, args: Any, kwargs: Any) -> dict[str, Any]:
        try:
            return self.conveyor_spec.validate(args, kwargs)
        except ArgumentsInvalid as exc:
            raise PermanentError(str(exc)) from exc

    def _policy(self, job_id: str | None) -> RetryPolicy | None:
        """The task's retry policy with the job's per-submit override (read from the store)."""
        override = None
        if job_id:
            try:
                job = self._lookup(job_id).get()
            except StoreError as exc:
                log.warning("retry_override_unavailable", job_id=job_id, error=str(exc))
                job = None
            override = job.retry if job is not None else None
        return effective_policy(self.conveyor_spec.retry, override)

    def _retry_or_raise(self, exc: Exception) -> None:
        decided = outcome(self._policy(self.request.id), exc, self.attempt)
        self.request.conveyor_outcome = decided
        if decided.state is JobState.RETRYING:
            raise self.retry(exc=exc, countdown=decided.delay)

    # -- context ------------------------------------------------------------------
    @property
    def attempt(self) -> int:
        """1 for the first run, 2 for the first retry, ..."""
        return int(self.request.retries or 0) + 1

    def _lookup(self, task_id: str) -> JobLookup:
        """This run's shared job row (one store read per run, whichever hook asks first)."""
        lookup = getattr(self.request, "conveyor_lookup", None)
        if not isinstance(lookup, JobLookup) or lookup.job_id != task_id:
            lookup = JobLookup(runtime_for(self.app).store, task_id)
            self.request.conveyor_lookup = lookup
        return lookup

    def _context(self, task_id: str) -> RunContext:
        runtime = runtime_for(self.app)
        delivery = self.request.delivery_info or {}
        queue = delivery.get("routing_key") or resolve_queue(self.conveyor_spec, runtime.settings)
        return RunContext(
            job_id=task_id,
            task=self.name,
            queue=queue,
            attempt=self.attempt,
            worker=self.request.hostname,
            workflow_id=(self.request.headers or {}).get(WORKFLOW_HEADER),
            lookup=self._lookup(task_id),
        )

    def _walk(self, ctx: RunContext, moment: str, *args: Any) -> None:
        for hook in runtime_for(self.app).hooks:
            try:
                getattr(hook, moment)(ctx, *args)
            except Exception as exc:  # a broken hook must never fail the job
                log.exception("hook_failed", hook=type(hook).__name__, moment=moment, error=exc)

    def _each_hook(self, moment: str, task_id: str, *args: Any) -> None:
        self._walk(self._context(task_id), moment, *args)

    def _gate(self, ctx: RunContext) -> Gate:
        for hook in runtime_for(self.app).hooks:
            try:
                gate = hook.before_run(ctx)
            except Exception as exc:  # a broken hook must never stop the job
                log.exception(
                    "hook_failed", hook=type(hook).__name__, moment="before_run", error=exc
                )
                continue
            if not gate.runs:
                return gate
        return RUN

    def _defer(self, gate: Gate) -> None:
        """Publish this message again after ``gate.countdown`` (the attempt is not counted)."""
        self.signature_from_request(self.request, countdown=gate.countdown).apply_async()

    # -- Celery's seams -----------------------------------------------------------
    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        self.request.conveyor_lookup = None  # a new run reads the job afresh
        ctx = self._context(task_id)
        gate = self._gate(ctx)
        if not gate.runs:
            if gate.action is GateAction.DEFER:
                self._defer(gate)
            self._walk(ctx, "on_skip", gate)
            self._before_ack()
            raise Ignore()
        self._walk(ctx, "on_start")

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: ExceptionInfo
    ) -> None:
        decided = getattr(self.request, "conveyor_outcome", None)
        delay = decided.delay if isinstance(decided, Outcome) else None
        self._each_hook("on_retry", task_id, _failure(exc, einfo, "retry"), delay)
        self._before_ack()  # Celery calls no after_return for a retry

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: ExceptionInfo
    ) -> None:
        timeout = current_timeout()
        if timeout is not None and isinstance(exc, TimeLimitExceeded):
            self._on_hard_timeout(timeout, exc, task_id, args, kwargs)
            return
        decided = getattr(self.request, "conveyor_outcome", None)
        if not isinstance(decided, Outcome):
            decided = _UNDECIDED
        failure = _failure(exc, einfo, decided.reason)
        self._each_hook("on_failure", task_id, failure, decided.state)

    def after_return(
        self,
        status: str,
        retval: Any,
        task_id: str,
        args: Any,
        kwargs: Any,
        einfo: ExceptionInfo | None,
    ) -> None:
        self._before_ack()

    # -- hard time limit (runs in the worker's main process) ----------------------
    def _on_hard_timeout(
        self, info: TimeoutInfo, exc: BaseException, task_id: str, args: Any, kwargs: Any
    ) -> None:
        attempt = info.retries + 1
        runtime = runtime_for(self.app, synchronous=True)  # no thread in a forking process
        queue = info.queue or resolve_queue(self.conveyor_spec, runtime.settings)
        ctx = RunContext(task_id, self.name, queue, attempt, info.hostname)
        failure = Failure(
            error=f"hard time limit ({info.limit:g}s) exceeded: the task was killed",
            error_type=type(exc).__name__,
            reason="time_limit",
        )
        decided = outcome(self._policy(task_id), exc, attempt)
        if decided.state is JobState.RETRYING:
            # the timed-out message is acknowledged; the retry is a new message
            self.apply_async(
                args=list(args or ()),
                kwargs=dict(kwargs or {}),
                task_id=task_id,
                retries=attempt,
                countdown=decided.delay,
                queue=queue,
                priority=info.priority,
            )
            self._walk(ctx, "on_retry", failure, decided.delay)
        else:
            self._walk(ctx, "on_failure", failure, decided.state)


def _flush_on_exit(**_: Any) -> None:
    """A pool child (or a threads/solo worker) is exiting: store what it recorded."""
    flush_runtime(current_app)


signals.worker_process_shutdown.connect(_flush_on_exit, weak=False)
signals.worker_shutdown.connect(_flush_on_exit, weak=False)
