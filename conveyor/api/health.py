"""``/healthz``: the API process is up (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter

from conveyor.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> HealthOut:
    return HealthOut()
