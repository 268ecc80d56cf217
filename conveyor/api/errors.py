"""One error format for every 4xx and 5xx: ``{"error": {"code", "message", "details"}}``.

``code`` is stable and machine-readable; ``message`` is for humans; ``details``
carries structured data (field errors for 422s). Each exception maps to its
response in one place, ``problem_for``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import singledispatch
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from conveyor.api.requestid import REQUEST_ID_HEADER, request_id_of
from conveyor.errors import ArgumentsInvalid, BrokerUnavailable, SubmitRefused, TaskNotFound
from conveyor.store.base import StoreError

log = structlog.get_logger("conveyor.api")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `task_not_found`.")
    message: str = Field(description="What went wrong, for humans.")
    details: Any = Field(
        None, description="Structured data: a list of field errors (loc, msg, type) for 422s."
    )


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(HTTPException):
    """An HTTP error with a stable code, raised by routes, dependencies and middleware."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    code: str
    message: str
    details: Any = None
    headers: Mapping[str, str] | None = None


def error_response(problem: Problem) -> JSONResponse:
    body = ErrorBody(
        error=ErrorDetail(code=problem.code, message=problem.message, details=problem.details)
    )
    headers = dict(problem.headers) if problem.headers else None
    return JSONResponse(body.model_dump(mode="json"), problem.status, headers=headers)


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Only ``loc``, ``msg`` and ``type`` of pydantic-style errors (never the input)."""
    return [
        {
            "loc": [part if isinstance(part, int) else str(part) for part in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _http_code(status: int) -> str:
    if status in _HTTP_CODES:
        return _HTTP_CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


@singledispatch
def problem_for(exc: Exception) -> Problem:
    """The response for ``exc``; anything unexpected is a 500 that tells nothing internal."""
    return Problem(500, "internal_error", "internal server error")


@problem_for.register
def _api_error(exc: ApiError) -> Problem:
    return Problem(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


@problem_for.register
def _http_exception(exc: HTTPException) -> Problem:
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return Problem(exc.status_code, _http_code(exc.status_code), message, None, exc.headers)


@problem_for.register
def _request_invalid(exc: RequestValidationError) -> Problem:
    errors = exc.errors()
    malformed = [e for e in errors if e.get("type") == "json_invalid"]
    if malformed:
        reason = (malformed[0].get("ctx") or {}).get("error", "invalid JSON")
        position = malformed[0].get("loc", ("body", None))[-1]
        details = {"reason": str(reason), "position": position}
        return Problem(400, "malformed_json", "the request body is not valid JSON", details)
    return Problem(422, "invalid_request", "the request is invalid", field_errors(errors))


@problem_for.register
def _task_not_found(exc: TaskNotFound) -> Problem:
    return Problem(404, "task_not_found", f"unknown task {exc.name!r}", {"task": exc.name})


@problem_for.register
def _arguments_invalid(exc: ArgumentsInvalid) -> Problem:
    return Problem(422, "invalid_arguments", str(exc), field_errors(exc.errors))


@problem_for.register
def _submit_refused(exc: SubmitRefused) -> Problem:
    return Problem(422, "submit_refused", str(exc), {"field": exc.field})


@problem_for.register
def _broker_unavailable(exc: BrokerUnavailable) -> Problem:
    message = "the broker is unavailable; nothing was enqueued, try again later"
    return Problem(503, "broker_unavailable", message)


@problem_for.register
def _store_unavailable(exc: StoreError) -> Problem:
    return Problem(503, "store_unavailable", "the job store is unavailable, try again later")


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    problem = problem_for(exc)
    level = log.warning if problem.status >= 500 else log.info
    level("request_refused", status=problem.status, code=problem.code, error=str(exc))
    return error_response(problem)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Last resort (runs outside every middleware, so it sets X-Request-ID itself)."""
    log.error("request_failed", error_type=type(exc).__name__, exc_info=exc)
    problem = problem_for(exc)
    request_id = request_id_of(request.scope)
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    return error_response(Problem(problem.status, problem.code, problem.message, None, headers))


_HANDLED = (
    HTTPException,
    RequestValidationError,
    TaskNotFound,
    ArgumentsInvalid,
    SubmitRefused,
    BrokerUnavailable,
    StoreError,
)


def install_error_handlers(app: FastAPI) -> None:
    for exc_class in _HANDLED:
        app.add_exception_handler(exc_class, handle_error)
    app.add_exception_handler(Exception, handle_unexpected)


_DESCRIPTIONS = {
    400: "Malformed JSON body (`malformed_json`).",
    401: "Missing or malformed `Authorization` header (`unauthorized`) "
    "or unknown/revoked key (`invalid_key`).",
    403: "The key lacks the scope this endpoint needs (`forbidden`).",
    404: "The job or task does not exist (`job_not_found`, `task_not_found`).",
    409: "The request conflicts with the resource's state "
    "(`job_finished`, `job_running`, `already_replayed`).",
    413: "The request body is larger than `max_body_bytes` (`body_too_large`).",
    422: "Invalid request (`invalid_request`), task arguments (`invalid_arguments`), "
    "cursor (`invalid_cursor`) or refused submit (`submit_refused`); "
    "`details` lists the field errors.",
    500: "Unexpected server error (`internal_error`).",
    503: "The broker or the job store is unreachable "
    "(`broker_unavailable`, `store_unavailable`); nothing was done.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the given statuses, each with the ErrorBody model."""
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
        for status in (*statuses, 500)
    }
