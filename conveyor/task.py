"""The ``@task`` decorator: typed parameters, policies, native async functions.

A decorated function is registered in a process-wide registry as a ``TaskSpec``.
The Celery app factory (``engine.create_app``) turns every spec into a Celery
task with ``ConveyorTask`` as base; the API validates submits against the same
spec, so bad arguments are refused before anything is enqueued, and validated
again in the worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import os
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import to_jsonable_python

from conveyor.errors import ArgumentsInvalid, TaskNotFound
from conveyor.jobs import Job
from conveyor.policies.concurrency import ConcurrencyLimit
from conveyor.policies.ratelimit import Limit, Rate, task_limit
from conveyor.policies.retry import RetryPolicy
from conveyor.schedules import check_timing

P = ParamSpec("P")
R = TypeVar("R")

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:")


def _params_model(name: str, fn: Callable[..., Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    hints = get_type_hints(fn, include_extras=True)
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"task {name!r}: *args/**kwargs parameters cannot be validated")
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, default)
    model_name = "".join(part.title() for part in name.replace("-", "_").split(".")) + "Params"
    config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)
    return create_model(model_name, __config__=config, **fields)


@dataclass(frozen=True)
class TaskSpec:
    """Everything conveyor knows about one task, independent of any Celery app."""

    name: str
    fn: Callable[..., Any]
    queue: str | None = None
    priority: int | None = None
    retry: RetryPolicy | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    description: str = ""
    celery_options: Mapping[str, Any] = field(default_factory=dict)
    #: run periodically: celery's crontab, a timedelta, seconds, or schedules.Cron/Every/At
    schedule: object | None = None
    #: while a job of this task with the same key arguments is active, submits return it
    unique: bool = False
    #: the arguments that make two jobs "the same" (None = all of them)
    unique_on: tuple[str, ...] | None = None
    #: cluster-wide rate limit (conveyor enforces it; never passed to Celery)
    rate_limit: Limit | None = None
    #: at most ``limit`` running jobs per value of the ``key`` parameter, cluster-wide
    concurrency: ConcurrencyLimit | None = None
    params: type[BaseModel] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _params_model(self.name, self.fn))
        unknown = sorted(set(self.unique_on or ()) - set(self.params.model_fields))
        if unknown:
            raise TypeError(f"task {self.name!r}: unique_on names unknown parameters {unknown}")
        if self.concurrency is not None and self.concurrency.key not in self.params.model_fields:
            raise TypeError(
                f"task {self.name!r}: concurrency key {self.concurrency.key!r} is not a parameter"
            )

    def unique_key(self, values: Mapping[str, Any]) -> str | None:
        """The key identifying "the same job" for a unique task (None if not unique)."""
        if not self.unique:
            return None
        names = self.unique_on if self.unique_on is not None else tuple(sorted(values))
        chosen = {name: to_jsonable_python(values.get(name), fallback=repr) for name in names}
        text = json.dumps([self.name, chosen], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def json_schema(self) -> dict[str, Any]:
        return self.params.model_json_schema()

    def validate(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Validated keyword arguments for ``fn``; raises ArgumentsInvalid with field errors."""
        values = self._bind(args, kwargs)
        try:
            model = self.params.model_validate(values)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            raise ArgumentsInvalid(self.name, [dict(e) for e in errors]) from None
        return {name: getattr(model, name) for name in type(model).model_fields}

    def _bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        names = list(self.params.model_fields)
        if len(args) > len(names):
            error = {
                "loc": ["args"],
                "msg": f"takes at most {len(names)} positional arguments, got {len(args)}",
                "type": "too_many_arguments",
            }
            raise ArgumentsInvalid(self.name, [error])
        values = dict(zip(names, args, strict=False))
        duplicated = sorted(set(values) & set(kwargs))
        if duplicated:
            errors = [
                {"loc": [n], "msg": "given both positionally and by keyword", "type": "duplicate"}
                for n in duplicated
            ]
            raise ArgumentsInvalid(self.name, errors)
        values.update(kwargs)
        return values

    def invoke(self, values: Mapping[str, Any]) -> Any:
        """Run the function with validated values (async functions on this thread's loop)."""
        if self.is_async:
            return run_coroutine(self.fn(**values))
        return self.fn(**values)


class _ThreadLoop:
    """An asyncio.Runner that is closed when its thread's storage goes away."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.pid = os.getpid()

    def __del__(self) -> None:
        if self.pid == os.getpid():
            self.runner.close()


class _LoopHolder(threading.local):
    loop: _ThreadLoop | None = None


_loops = _LoopHolder()


def run_coroutine(coro: Coroutine[Any, Any, R]) -> R:
    """Run ``coro`` on a long-lived event loop owned by this thread of this process.

    One loop per (process, thread) — created on first use and re-created after a
    fork — so connection pools built by async tasks stay valid between runs.
    """
    holder = _loops.loop
    if holder is None or holder.pid != os.getpid():
        holder = _loops.loop = _ThreadLoop()
    return holder.runner.run(coro)


class TaskRegistry:
    """Name → TaskSpec for every task declared in this process."""

    def __init__(self) -> None:
        self._specs: dict[str, TaskSpec] = {}
        self._lock = threading.Lock()

    def add(self, spec: TaskSpec) -> None:
        with self._lock:
            existing = self._specs.get(spec.name)
            if existing is not None and existing.fn is not spec.fn:
                same = (existing.fn.__module__, existing.fn.__qualname__) == (
                    spec.fn.__module__,
                    spec.fn.__qualname__,
                )
                if not same:
                    raise ValueError(f"task name {spec.name!r} is already taken")
            self._specs[spec.name] = spec

    def get(self, name: str) -> TaskSpec:
        spec = self._specs.get(name)
        if spec is None:
            raise TaskNotFound(name)
        return spec

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[TaskSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)


registry = TaskRegistry()


class TaskFunction(Generic[P, R]):
    """What ``@task`` returns: still callable as the plain function (with validation)."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.__doc__ = spec.fn.__doc__
        self.__wrapped__ = spec.fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self.spec.invoke(self.spec.validate(args, kwargs))

    def __repr__(self) -> str:
        return f"<conveyor task {self.name}>"

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> Job:
        """Submit a job of this task in-process (validated and recorded like an HTTP submit).

        Uses the process-wide Submitter of ``conveyor.local``; for queue, priority,
        countdown or eta use ``submit_with``.
        """
        return self.submit_with(args, kwargs)

    def submit_with(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
    ) -> Job:
        """``submit`` with options: ``fn.submit_with([1], {"y": 2}, queue="email")``."""
        if not _submit_function:
            raise RuntimeError("in-process submits need conveyor.local (import conveyor)")
        return _submit_function[0](
            self.name,
            args,
            kwargs,
            queue=queue,
            priority=priority,
            countdown=countdown,
            eta=eta,
        )


class SubmitFunction(Protocol):
    def __call__(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
    ) -> Job: ...


#: set by ``conveyor.local`` on import (it needs the Submitter, which needs this module)
_submit_function: list[SubmitFunction] = []


def set_submit_function(fn: SubmitFunction) -> None:
    _submit_function[:] = [fn]


def _check_name(name: str) -> str:
    if not name or len(name) > 200 or not set(name) <= _NAME_CHARS:
        raise ValueError(f"invalid task name {name!r}: use letters, digits and . _ - :")
    return name


@overload
def task(fn: Callable[P, R], /) -> TaskFunction[P, R]: ...
@overload
def task(
    *,
    name: str | None = None,
    queue: str | None = None,
    priority: int | None = None,
    retry: RetryPolicy | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    schedule: object | None = None,
    unique: bool = False,
    unique_on: Sequence[str] | None = None,
    rate_limit: Limit | Rate | str | None = None,
    concurrency: ConcurrencyLimit | None = None,
    **celery_options: Any,
) -> Callable[[Callable[P, R]], TaskFunction[P, R]]: ...


def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str | None = None,
    priority: int | None = None,
    retry: RetryPolicy | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    schedule: object | None = None,
    unique: bool = False,
    unique_on: Sequence[str] | None = None,
    rate_limit: Limit | Rate | str | None = None,
    concurrency: ConcurrencyLimit | None = None,
    **celery_options: Any,
) -> TaskFunction[P, R] | Callable[[Callable[P, R]], TaskFunction[P, R]]:
    """Declare a conveyor task.

    ``name`` defaults to ``module.function``; ``queue`` defaults to the routes in
    settings (then ``default``); parameters must be typed — they are validated
    with pydantic at submit time and again in the worker. ``schedule`` makes the
    scheduler run it periodically (celery's ``crontab``, a ``timedelta``, seconds,
    or ``conveyor.schedules.Cron``/``Every``/``At``), as a schedule named after the task.
    ``unique=True`` makes
    a submit return the active job of this task with the same arguments (or the
    same ``unique_on`` arguments) instead of creating another one.
    ``rate_limit`` (``"10/m"``, ``"50/s;burst=5"`` or a shared ``Limit``) and
    ``concurrency`` (``ConcurrencyLimit(key=..., limit=...)``) hold across every
    worker of the cluster (see docs/flow-control.md).
    """

    def decorate(func: Callable[P, R]) -> TaskFunction[P, R]:
        if priority is not None and not 0 <= priority <= 9:
            raise ValueError("priority must be between 0 and 9")
        task_name = _check_name(name or f"{func.__module__}.{func.__name__}")
        spec = TaskSpec(
            name=task_name,
            fn=func,
            queue=queue,
            priority=priority,
            retry=retry,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            description=inspect.getdoc(func) or "",
            celery_options=dict(celery_options),
            schedule=None if schedule is None else check_timing(schedule),
            unique=unique or unique_on is not None,
            unique_on=tuple(unique_on) if unique_on is not None else None,
            rate_limit=task_limit(task_name, rate_limit),
            concurrency=concurrency,
        )
        registry.add(spec)
        return TaskFunction(spec)

    if fn is not None:
        return decorate(fn)
    return decorate
