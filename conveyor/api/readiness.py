"""``GET /readyz``: can this deployment take work? (no authentication)

Checks the broker (one connection), the job store (reachable and migrated) and,
with ``CONVEYOR_READYZ_REQUIRE_WORKERS=true``, that every configured queue has at
least one worker consuming it. 200 when every check passes, 503 otherwise; the
body names each check and why it failed.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from conveyor.api.context import ApiContext, Context
from conveyor.inspection import BROKER_ERRORS, broker_reachable, consumed_queues
from conveyor.store.base import StoreError

router = APIRouter(tags=["health"])


class Check(BaseModel):
    ok: bool
    error: str | None = None


class ReadyOut(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Check]
    failed: list[str]


def _store_check(context: ApiContext) -> Check:
    try:
        if not context.store.is_migrated():
            return Check(ok=False, error="the job store is not migrated: run `conveyor migrate`")
    except StoreError as exc:
        return Check(ok=False, error=str(exc))
    return Check(ok=True)


def _broker_check(context: ApiContext) -> Check:
    reason = broker_reachable(context.submitter.app)
    return Check(ok=reason is None, error=reason)


def _workers_check(context: ApiContext) -> Check:
    try:
        consumed = consumed_queues(context.submitter.app, context.settings.inspect_timeout)
    except BROKER_ERRORS as exc:
        return Check(ok=False, error=f"cannot ask the workers: {exc}")
    missing = [q for q in context.settings.queues if q not in consumed]
    if missing:
        return Check(ok=False, error=f"no worker consumes queue(s): {', '.join(missing)}")
    return Check(ok=True)


def readiness(context: ApiContext) -> ReadyOut:
    checks = {"broker": _broker_check(context), "store": _store_check(context)}
    if context.settings.readyz_require_workers:
        checks["workers"] = _workers_check(context)
    failed = [name for name, check in checks.items() if not check.ok]
    return ReadyOut(status="not_ready" if failed else "ready", checks=checks, failed=failed)


@router.get(
    "/readyz",
    summary="Readiness",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "A check failed."}},
)
async def readyz(context: Context) -> JSONResponse:
    """Broker reachable, store reachable and migrated (optionally: every queue consumed)."""
    result = await run_in_threadpool(readiness, context)
    return JSONResponse(result.model_dump(), status_code=503 if result.failed else 200)
