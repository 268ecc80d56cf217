"""Call a conveyor service from any Python backend: ``Client`` and ``AsyncClient``.

::

    from conveyor import Client

    client = Client("http://jobs.internal:8000", api_key="cvk_...")
    handle = client.submit("reports.build", 2024, kwargs={"fmt": "pdf"}, queue="analytics")
    report = handle.result(timeout=60)          # waits (long-poll), raises JobFailed
    client.email.send(to="a@example.com", subject="Hi", body="...")

``submit(task, *args, **task_kwargs)`` takes the task's positional arguments
and, as keywords, its keyword arguments; the submit options ``queue``,
``priority``, ``countdown`` and ``eta`` are reserved keywords. A task whose
parameters are called like an option gets them through ``kwargs={...}``.

Both clients take ``transport=`` (any httpx transport: ``httpx.ASGITransport``
to call an app in-process, ``httpx.MockTransport`` in tests). Errors come back
typed: ``Unauthorized``, ``TaskNotFound``, ``ValidationFailed`` (with the field
errors), ``NotFound``, ``ServiceUnavailable``, ``ApiError`` for anything else;
``JobFailed`` when a job you wait for did not succeed. See docs/client.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import httpx

from conveyor import errors
from conveyor.jobs import Job, JobState

__all__ = [
    "ApiError",
    "AsyncClient",
    "AsyncJobHandle",
    "Client",
    "JobFailed",
    "JobHandle",
    "NotFound",
    "ServiceUnavailable",
    "TaskNotFound",
    "Unauthorized",
    "ValidationFailed",
    "job_from_json",
]

API = "/api/v1"
#: longest single long-poll the server allows
MAX_POLL_SECONDS = 60.0
DEFAULT_TIMEOUT = 30.0
_DATES = ("created_at", "scheduled_for", "started_at", "finished_at", "updated_at")


# -- errors ------------------------------------------------------------------------------
class ApiError(errors.ConveyorError):
    """The service refused a request: HTTP status, the stable ``code``, ``details``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        request_id: str | None = None,
    ) -> None:
        Exception.__init__(self, f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id


class Unauthorized(ApiError):
    """401 (missing, unknown or revoked key) or 403 (the key lacks the scope)."""


class NotFound(ApiError):
    """404: no such job, task, workflow, schedule or dead letter."""


class TaskNotFound(NotFound, errors.TaskNotFound):
    """404 ``task_not_found``; also caught by ``except conveyor.TaskNotFound``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        details = self.details if isinstance(self.details, Mapping) else {}
        self.name = str(details.get("task", ""))


class ValidationFailed(ApiError):
    """422 (or 400, malformed JSON); ``errors``: the field errors (``loc``, ``msg``, ``type``)."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.details) if isinstance(self.details, list) else []


class ServiceUnavailable(ApiError):
    """503: the broker or the job store is down; nothing was done, try again later."""


class JobFailed(errors.ConveyorError):
    """A job ended in FAILED, DEAD or CANCELLED; carries the remote error."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} ({job.task}) {job.state}: {job.error_type}: {job.error}")
        self.job = job
        self.state = job.state
        self.error = job.error
        self.error_type = job.error_type
        self.traceback = job.traceback


def _error_class(status: int, code: str) -> type[ApiError]:
    if status in (401, 403):
        return Unauthorized
    if code == "task_not_found":
        return TaskNotFound
    if status == 404:
        return NotFound
    if status in (400, 422):
        return ValidationFailed
    if status == 503:
        return ServiceUnavailable
    return ApiError


def raise_for_error(response: httpx.Response) -> None:
    """Raise the typed error for a 4xx/5xx response in the standard error format."""
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        code, message, details = str(error["code"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError):
        code, message, details = "http_error", response.text[:500] or response.reason_phrase, None
    cls = _error_class(response.status_code, code)
    request_id = response.headers.get("X-Request-ID")
    raise cls(response.status_code, code, message, details, request_id)


# -- values ------------------------------------------------------------------------------
def _parse_date(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def job_from_json(data: Mapping[str, Any]) -> Job:
    """A ``conveyor.Job`` from the API's job JSON."""
    row = dict(data)
    for key in _DATES:
        if key in row:
            row[key] = _parse_date(row[key])
    return Job.from_row(row)


@dataclass(frozen=True, slots=True)
class Request:
    """One API call, independent of sync or async transport."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None
    timeout: float | None = None


_OPTIONS = ("queue", "priority", "countdown", "eta")


def submit_body(
    task: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    body: dict[str, Any] = {"task": task, "args": list(args), "kwargs": dict(kwargs or {})}
    for name in _OPTIONS:
        value = options.get(name)
        if value is not None:
            body[name] = value.isoformat() if isinstance(value, datetime) else value
    return body


def _clean(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


# -- the calls, shared by both clients ---------------------------------------------------
class Calls:
    """Every API call as a ``Request`` plus how to read its response."""

    @staticmethod
    def submit(body: Mapping[str, Any]) -> Request:
        return Request("POST", f"{API}/jobs", json=dict(body))

    @staticmethod
    def submit_many(bodies: Sequence[Mapping[str, Any]]) -> Request:
        return Request("POST", f"{API}/jobs/batch", json={"jobs": [dict(b) for b in bodies]})

    @staticmethod
    def get_job(job_id: str, wait: float = 0) -> Request:
        params = {"wait": round(min(wait, MAX_POLL_SECONDS), 3)} if wait > 0 else None
        timeout = (wait + DEFAULT_TIMEOUT) if wait > 0 else None
        return Request("GET", f"{API}/jobs/{job_id}", params=params, timeout=timeout)

    @staticmethod
    def list_jobs(**filters: Any) -> Request:
        return Request("GET", f"{API}/jobs", params=_clean(filters))

    @staticmethod
    def cancel(job_id: str, terminate: bool) -> Request:
        return Request("POST", f"{API}/jobs/{job_id}/cancel", json={"terminate": terminate})

    @staticmethod
    def start_workflow(spec: Mapping[str, Any]) -> Request:
        return Request("POST", f"{API}/workflows", json=dict(spec))

    @staticmethod
    def get_workflow(workflow_id: str) -> Request:
        return Request("GET", f"{API}/workflows/{workflow_id}")

    @staticmethod
    def schedules() -> Request:
        return Request("GET", f"{API}/schedules")

    @staticmethod
    def schedule(name: str) -> Request:
        return Request("GET", f"{API}/schedules/{name}")

    @staticmethod
    def create_schedule(fields: Mapping[str, Any]) -> Request:
        return Request("POST", f"{API}/schedules", json=_clean(fields))

    @staticmethod
    def update_schedule(name: str, fields: Mapping[str, Any]) -> Request:
        return Request("PATCH", f"{API}/schedules/{name}", json=dict(fields))

    @staticmethod
    def delete_schedule(name: str) -> Request:
        return Request("DELETE", f"{API}/schedules/{name}")

    @staticmethod
    def schedule_action(name: str, action: str) -> Request:
        return Request("POST", f"{API}/schedules/{name}/{action}")

    @staticmethod
    def dead_letters(filters: Mapping[str, Any]) -> Request:
        return Request("GET", f"{API}/dead-letters", params=_clean(filters))

    @staticmethod
    def replay_dead_letter(entry_id: str) -> Request:
        return Request("POST", f"{API}/dead-letters/{entry_id}/replay")

    @staticmethod
    def replay_dead_letters(filters: Mapping[str, Any]) -> Request:
        return Request("POST", f"{API}/dead-letters/replay", json=_clean(filters))

    @staticmethod
    def delete_dead_letter(entry_id: str) -> Request:
        return Request("DELETE", f"{API}/dead-letters/{entry_id}")


def _body(response: httpx.Response) -> Any:
    raise_for_error(response)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


H = TypeVar("H")


@dataclass(frozen=True, slots=True)
class Refused:
    """A batch item the service refused, with the error in the standard format."""

    index: int
    code: str
    message: str
    details: Any = None


@dataclass(frozen=True)
class Batch(Generic[H]):
    """What ``submit_many`` returns: per item, in order, a handle or a ``Refused``."""

    items: list[H | Refused] = field(default_factory=list)

    @property
    def accepted(self) -> list[H]:
        return [item for item in self.items if not isinstance(item, Refused)]

    @property
    def refused(self) -> list[Refused]:
        return [item for item in self.items if isinstance(item, Refused)]


def _batch(data: Mapping[str, Any], handle: Callable[[Job], H]) -> Batch[H]:
    items: list[H | Refused] = []
    for item in data["items"]:
        if item["accepted"]:
            items.append(handle(job_from_json(item["job"])))
        else:
            error = item["error"]
            items.append(Refused(item["index"], error["code"], error["message"], error["details"]))
    return Batch(items)


# -- catalog helpers ---------------------------------------------------------------------
R = TypeVar("R")


class _Namespace(Generic[R]):
    def __init__(self, submit: Callable[..., R], prefix: str) -> None:
        self._submit = submit
        self._prefix = prefix

    def _call(self, name: str, fields: Mapping[str, Any]) -> R:
        return self._submit(f"{self._prefix}.{name}", kwargs=dict(fields))


class EmailTasks(_Namespace[R]):
    def send(self, **fields: Any) -> R:
        """Submit ``email.send`` with these keyword arguments (to, subject, body, ...)."""
        return self._call("send", fields)


class TelegramTasks(_Namespace[R]):
    def send_message(self, **fields: Any) -> R:
        """Submit ``telegram.send_message`` (chat_id, text, ...)."""
        return self._call("send_message", fields)


class SmsTasks(_Namespace[R]):
    def send(self, **fields: Any) -> R:
        """Submit ``sms.send`` (to, text, ...)."""
        return self._call("send", fields)


class PushTasks(_Namespace[R]):
    def send(self, **fields: Any) -> R:
        """Submit ``push.send`` (token, title, body, ...)."""
        return self._call("send", fields)


class WebhookTasks(_Namespace[R]):
    def post(self, **fields: Any) -> R:
        """Submit ``webhook.post`` (url, payload, ...)."""
        return self._call("post", fields)


class HttpTasks(_Namespace[R]):
    def request(self, **fields: Any) -> R:
        """Submit ``http.request`` (method, url, ...)."""
        return self._call("request", fields)


class _Catalog(Generic[R]):
    def _install_catalog(self, submit: Callable[..., R]) -> None:
        self.email = EmailTasks(submit, "email")
        self.telegram = TelegramTasks(submit, "telegram")
        self.sms = SmsTasks(submit, "sms")
        self.push = PushTasks(submit, "push")
        self.webhook = WebhookTasks(submit, "webhook")
        self.http = HttpTasks(submit, "http")


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "conveyor-client"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


# -- sync --------------------------------------------------------------------------------
class JobHandle:
    """A submitted job: ``job`` is the state it had when last read."""

    def __init__(self, client: Client, job: Job) -> None:
        self.client = client
        self.job = job
        self.id = job.id

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.job.task} {self.job.state}>"

    def refresh(self) -> Job:
        self.job = self.client.get_job(self.id)
        return self.job

    def status(self) -> JobState:
        """The job's current state (one request)."""
        return self.refresh().state

    def wait(self, timeout: float | None = DEFAULT_TIMEOUT) -> Job:
        """Wait (long-polling the service) until the job is final; TimeoutError after
        ``timeout`` seconds (None = wait forever). Returns the final job."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = MAX_POLL_SECONDS if deadline is None else deadline - time.monotonic()
            self.job = self.client.get_job(self.id, wait=max(min(remaining, MAX_POLL_SECONDS), 0))
            if self.job.state.is_final:
                return self.job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} not finished after {timeout:g}s")

    def result(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        """The job's result once it succeeded; JobFailed if it failed, died or was cancelled."""
        job = self.wait(timeout)
        if job.state is not JobState.SUCCEEDED:
            raise JobFailed(job)
        return job.result

    def cancel(self, terminate: bool = False) -> Job:
        """Cancel the job (``terminate``: also stop it if it is running)."""
        self.job = self.client.cancel(self.id, terminate=terminate)
        return self.job


class Client(_Catalog[JobHandle]):
    """A blocking client of the conveyor HTTP API."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=_headers(api_key),
            timeout=timeout,
            transport=transport,
        )
        self._install_catalog(self.submit)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def call(self, request: Request) -> Any:
        """Send one API call; returns the decoded JSON body, raises the typed error."""
        timeout = request.timeout if request.timeout is not None else httpx.USE_CLIENT_DEFAULT
        response = self._http.request(
            request.method, request.path, json=request.json, params=request.params, timeout=timeout
        )
        return _body(response)

    # jobs
    def submit(
        self,
        task: str,
        *args: Any,
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        **task_kwargs: Any,
    ) -> JobHandle:
        """Submit ``task``; positional args and extra keywords are the task's arguments."""
        options = {"queue": queue, "priority": priority, "countdown": countdown, "eta": eta}
        body = submit_body(task, args, {**(kwargs or {}), **task_kwargs}, options)
        return JobHandle(self, job_from_json(self.call(Calls.submit(body))))

    def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> Batch[JobHandle]:
        """Submit up to 1,000 jobs in one request; each item is a submit body
        (``{"task": ..., "args": [...], "kwargs": {...}, "queue": ...}``)."""
        data = self.call(Calls.submit_many(jobs))
        return _batch(data, lambda job: JobHandle(self, job))

    def get_job(self, job_id: str, wait: float = 0) -> Job:
        """The job; with ``wait`` the service holds the request until it is final (≤ 60 s)."""
        return job_from_json(self.call(Calls.get_job(job_id, wait)))

    def job(self, job_id: str) -> JobHandle:
        """A handle on an existing job."""
        return JobHandle(self, self.get_job(job_id))

    def list_jobs(self, **filters: Any) -> list[Job]:
        """One page of jobs, newest first (filters: state, task, queue, limit, cursor)."""
        return [job_from_json(item) for item in self.call(Calls.list_jobs(**filters))["items"]]

    def cancel(self, job_id: str, terminate: bool = False) -> Job:
        return job_from_json(self.call(Calls.cancel(job_id, terminate)))

    def retry(self, job_id: str) -> JobHandle:
        """Submit a new job with the task, arguments, queue and priority of ``job_id``."""
        old = self.get_job(job_id)
        return self.submit(
            old.task, *old.args, kwargs=old.kwargs, queue=old.queue, priority=old.priority
        )

    # workflows
    def start_workflow(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Start a workflow (see docs/workflows.md); returns it with its step tree."""
        result: dict[str, Any] = self.call(Calls.start_workflow(spec))
        return result

    def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(Calls.get_workflow(workflow_id))
        return result

    # schedules
    def list_schedules(self) -> Any:
        return self.call(Calls.schedules())

    def get_schedule(self, name: str) -> Any:
        return self.call(Calls.schedule(name))

    def create_schedule(self, name: str, task: str, **fields: Any) -> Any:
        return self.call(Calls.create_schedule({"name": name, "task": task, **fields}))

    def update_schedule(self, name: str, **fields: Any) -> Any:
        return self.call(Calls.update_schedule(name, fields))

    def delete_schedule(self, name: str) -> None:
        self.call(Calls.delete_schedule(name))

    def run_schedule(self, name: str) -> Any:
        """Submit the schedule's job now."""
        return self.call(Calls.schedule_action(name, "run"))

    def pause_schedule(self, name: str) -> Any:
        return self.call(Calls.schedule_action(name, "pause"))

    def resume_schedule(self, name: str) -> Any:
        return self.call(Calls.schedule_action(name, "resume"))

    # dead letters
    def list_dead_letters(self, **filters: Any) -> Any:
        return self.call(Calls.dead_letters(filters))

    def replay_dead_letter(self, entry_id: str) -> Any:
        return self.call(Calls.replay_dead_letter(entry_id))

    def replay_dead_letters(self, **filters: Any) -> Any:
        """Replay every dead letter matching the filters (e.g. ``task=...``)."""
        return self.call(Calls.replay_dead_letters(filters))

    def delete_dead_letter(self, entry_id: str) -> None:
        self.call(Calls.delete_dead_letter(entry_id))


# -- async -------------------------------------------------------------------------------
class AsyncJobHandle:
    """``JobHandle`` for ``AsyncClient``: the same methods, awaitable."""

    def __init__(self, client: AsyncClient, job: Job) -> None:
        self.client = client
        self.job = job
        self.id = job.id

    def __repr__(self) -> str:
        return f"<AsyncJobHandle {self.id} {self.job.task} {self.job.state}>"

    async def refresh(self) -> Job:
        self.job = await self.client.get_job(self.id)
        return self.job

    async def status(self) -> JobState:
        return (await self.refresh()).state

    async def wait(self, timeout: float | None = DEFAULT_TIMEOUT) -> Job:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = MAX_POLL_SECONDS if deadline is None else deadline - loop.time()
            wait = max(min(remaining, MAX_POLL_SECONDS), 0)
            self.job = await self.client.get_job(self.id, wait=wait)
            if self.job.state.is_final:
                return self.job
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError(f"job {self.id} not finished after {timeout:g}s")

    async def result(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        job = await self.wait(timeout)
        if job.state is not JobState.SUCCEEDED:
            raise JobFailed(job)
        return job.result

    async def cancel(self, terminate: bool = False) -> Job:
        self.job = await self.client.cancel(self.id, terminate=terminate)
        return self.job


class AsyncClient(_Catalog[Awaitable[AsyncJobHandle]]):
    """The asyncio twin of ``Client`` (every call is a coroutine)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=_headers(api_key),
            timeout=timeout,
            transport=transport,
        )
        self._install_catalog(self.submit)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, request: Request) -> Any:
        timeout = request.timeout if request.timeout is not None else httpx.USE_CLIENT_DEFAULT
        response = await self._http.request(
            request.method, request.path, json=request.json, params=request.params, timeout=timeout
        )
        return _body(response)

    async def submit(
        self,
        task: str,
        *args: Any,
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        **task_kwargs: Any,
    ) -> AsyncJobHandle:
        options = {"queue": queue, "priority": priority, "countdown": countdown, "eta": eta}
        body = submit_body(task, args, {**(kwargs or {}), **task_kwargs}, options)
        return AsyncJobHandle(self, job_from_json(await self.call(Calls.submit(body))))

    async def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> Batch[AsyncJobHandle]:
        data = await self.call(Calls.submit_many(jobs))
        return _batch(data, lambda job: AsyncJobHandle(self, job))

    async def get_job(self, job_id: str, wait: float = 0) -> Job:
        return job_from_json(await self.call(Calls.get_job(job_id, wait)))

    async def job(self, job_id: str) -> AsyncJobHandle:
        return AsyncJobHandle(self, await self.get_job(job_id))

    async def list_jobs(self, **filters: Any) -> list[Job]:
        data = await self.call(Calls.list_jobs(**filters))
        return [job_from_json(item) for item in data["items"]]

    async def cancel(self, job_id: str, terminate: bool = False) -> Job:
        return job_from_json(await self.call(Calls.cancel(job_id, terminate)))

    async def retry(self, job_id: str) -> AsyncJobHandle:
        old = await self.get_job(job_id)
        return await self.submit(
            old.task, *old.args, kwargs=old.kwargs, queue=old.queue, priority=old.priority
        )

    async def start_workflow(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(Calls.start_workflow(spec))
        return result

    async def get_workflow(self, workflow_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call(Calls.get_workflow(workflow_id))
        return result

    async def list_schedules(self) -> Any:
        return await self.call(Calls.schedules())

    async def get_schedule(self, name: str) -> Any:
        return await self.call(Calls.schedule(name))

    async def create_schedule(self, name: str, task: str, **fields: Any) -> Any:
        return await self.call(Calls.create_schedule({"name": name, "task": task, **fields}))

    async def update_schedule(self, name: str, **fields: Any) -> Any:
        return await self.call(Calls.update_schedule(name, fields))

    async def delete_schedule(self, name: str) -> None:
        await self.call(Calls.delete_schedule(name))

    async def run_schedule(self, name: str) -> Any:
        return await self.call(Calls.schedule_action(name, "run"))

    async def pause_schedule(self, name: str) -> Any:
        return await self.call(Calls.schedule_action(name, "pause"))

    async def resume_schedule(self, name: str) -> Any:
        return await self.call(Calls.schedule_action(name, "resume"))

    async def list_dead_letters(self, **filters: Any) -> Any:
        return await self.call(Calls.dead_letters(filters))

    async def replay_dead_letter(self, entry_id: str) -> Any:
        return await self.call(Calls.replay_dead_letter(entry_id))

    async def replay_dead_letters(self, **filters: Any) -> Any:
        return await self.call(Calls.replay_dead_letters(filters))

    async def delete_dead_letter(self, entry_id: str) -> None:
        await self.call(Calls.delete_dead_letter(entry_id))
