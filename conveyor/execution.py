"""``ConveyorTask``: the Celery base class every conveyor task runs under.

It validates the arguments again in the worker, runs sync or async functions,
applies the task's retry policy, and walks the hook list at each moment of a
run (start, success, retry, failure). Nothing else lives here.
"""

from __future__ import annotations

from typing import Any

import structlog
from billiard.einfo import ExceptionInfo
from celery import Task, current_app, signals
from celery.exceptions import Retry
from pydantic_core import to_jsonable_python

from conveyor.context import JobContext, running
from conveyor.errors import ArgumentsInvalid, PermanentError
from conveyor.hooks.base import RunContext
from conveyor.jobs import JobState
from conveyor.routing import resolve_queue
from conveyor.runtime import flush_runtime, runtime_for
from conveyor.store.base import Failure
from conveyor.submit import WORKFLOW_HEADER
from conveyor.task import TaskSpec

log = structlog.get_logger("conveyor.worker")


def _failure(exc: BaseException, einfo: ExceptionInfo | None) -> Failure:
    tb = einfo.traceback if einfo is not None else None
    return Failure(error=str(exc) or repr(exc), error_type=type(exc).__name__, traceback=tb)


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

    # -- the run ------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        spec = self.conveyor_spec
        try:
            values = spec.validate(args, kwargs)
        except ArgumentsInvalid as exc:
            raise PermanentError(str(exc)) from exc
        job = JobContext(
            job_id=self.request.id or "",
            task=self.name,
            attempt=self.attempt,
            report=runtime_for(self.app).recorder.record,
        )
        try:
            with running(job):
                return spec.invoke(values)
        except Retry:
            raise
        except Exception as exc:
            self._retry_or_raise(exc)
            raise

    def _retry_or_raise(self, exc: Exception) -> None:
        policy = self.conveyor_spec.retry
        if policy is None:
            return
        decision = policy.decide(exc, self.attempt)
        if decision.retry:
            self.request.conveyor_retry_delay = decision.delay
            raise self.retry(exc=exc, countdown=decision.delay)

    # -- context ------------------------------------------------------------------
    @property
    def attempt(self) -> int:
        """1 for the first run, 2 for the first retry, ..."""
        return int(self.request.retries or 0) + 1

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
        )

    def _each_hook(self, moment: str, task_id: str, *args: Any) -> None:
        runtime = runtime_for(self.app)
        ctx = self._context(task_id)
        for hook in runtime.hooks:
            try:
                getattr(hook, moment)(ctx, *args)
            except Exception as exc:  # a broken hook must never fail the job
                log.exception("hook_failed", hook=type(hook).__name__, moment=moment, error=exc)

    # -- Celery's seams -----------------------------------------------------------
    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        self._each_hook("on_start", task_id)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        limit = runtime_for(self.app).settings.result_max_bytes
        self._each_hook("on_success", task_id, jsonable_result(retval, limit))

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: ExceptionInfo
    ) -> None:
        delay = getattr(self.request, "conveyor_retry_delay", None)
        self._each_hook("on_retry", task_id, _failure(exc, einfo), delay)

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: ExceptionInfo
    ) -> None:
        self._each_hook("on_failure", task_id, _failure(exc, einfo), JobState.FAILED)


def _flush_on_exit(**_: Any) -> None:
    """A pool child (or a threads/solo worker) is exiting: store what it recorded."""
    flush_runtime(current_app)


signals.worker_process_shutdown.connect(_flush_on_exit, weak=False)
signals.worker_shutdown.connect(_flush_on_exit, weak=False)
