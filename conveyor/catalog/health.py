"""``health.check``: probe HTTP endpoints, the broker and the job store; one result each.

The seed microservice's ``system_health_check_task`` done as a catalog task. Every
target gets ``{"name", "kind", "ok", "latency_ms", ...}``; ``healthy`` is true when
all are ok. An unhealthy result is still a successful job unless
``fail_if_unhealthy`` is set (then the job fails, so alerts on failed jobs fire).
Like ``maintenance.prune_jobs``, the store probe opens the store from the settings.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import httpx
from kombu import Connection
from pydantic import BaseModel, ConfigDict, Field

from conveyor.catalog.common import send, settings
from conveyor.catalog.http import resolve_url
from conveyor.errors import ConveyorError, PermanentError
from conveyor.store import open_store
from conveyor.task import task


class HttpTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["http"] = "http"
    url: str = Field(description="Absolute URL, or a path joined to CONVEYOR_HTTP_BASE_URL.")
    expected_status: int = Field(200, ge=100, le=599)
    name: str | None = None
    timeout: float = Field(5.0, gt=0, le=60)


class BrokerTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["broker"] = "broker"
    name: str | None = None
    timeout: float = Field(5.0, gt=0, le=60)


class StoreTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["store"] = "store"
    name: str | None = None


Target = Annotated[HttpTarget | BrokerTarget | StoreTarget, Field(discriminator="kind")]


def _probe_http(target: HttpTarget) -> dict[str, Any]:
    url = resolve_url(target.url, settings().http_base_url)
    response = send(httpx.Request("GET", url), target.timeout)
    ok = response.status_code == target.expected_status
    return {"ok": ok, "status_code": response.status_code}


def _probe_broker(target: BrokerTarget) -> dict[str, Any]:
    cfg = settings()
    with Connection(cfg.effective_broker_url, connect_timeout=target.timeout) as conn:
        conn.ensure_connection(
            max_retries=1,
            interval_start=0.1,
            interval_step=0,
            interval_max=0.1,
            timeout=target.timeout,
        )
    return {"ok": True}


def _probe_store(_: StoreTarget) -> dict[str, Any]:
    store = open_store(settings())
    try:
        store.ping()
    finally:
        store.close()
    return {"ok": True}


def probe(target: HttpTarget | BrokerTarget | StoreTarget) -> dict[str, Any]:
    """One target's result; never raises for an unhealthy target."""
    started = time.monotonic()
    name = target.name or (target.url if isinstance(target, HttpTarget) else target.kind)
    try:
        if isinstance(target, HttpTarget):
            outcome = _probe_http(target)
        elif isinstance(target, BrokerTarget):
            outcome = _probe_broker(target)
        else:
            outcome = _probe_store(target)
    except (ConveyorError, OSError, TimeoutError) as exc:
        outcome = {"ok": False, "error": str(exc)[:300]}
    except Exception as exc:  # a broken probe is an unhealthy target, not a crashed check
        outcome = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    latency = round((time.monotonic() - started) * 1000, 1)
    return {"name": name, "kind": target.kind, "latency_ms": latency, **outcome}


@task(name="health.check", queue="cleanup", time_limit=120, soft_time_limit=100)
def check(
    targets: Annotated[
        list[Target] | None,
        Field(description="What to probe (default: the broker and the job store)."),
    ] = None,
    fail_if_unhealthy: Annotated[
        bool, Field(description="Fail the job when any target is unhealthy.")
    ] = False,
) -> dict[str, Any]:
    """Probe each target (default: the broker and the job store); per-target results."""
    default: list[Target] = [BrokerTarget(), StoreTarget()]
    chosen = targets if targets is not None else default
    results = [probe(target) for target in chosen]
    healthy = all(r["ok"] for r in results)
    if fail_if_unhealthy and not healthy:
        bad = ", ".join(r["name"] for r in results if not r["ok"])
        raise PermanentError(f"unhealthy: {bad}")
    return {"healthy": healthy, "targets": results}
