"""``/api/v1/queues``: list queues (depth, paused, consumers), pause and resume them."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from conveyor.api.auth import require
from conveyor.api.context import ApiContext, Context
from conveyor.api.errors import ApiError, error_responses
from conveyor.queues import (
    BrokerKind,
    QueueInfo,
    UnknownQueue,
    broker_kind,
    list_queues,
    set_paused,
    supports_priorities,
)

router = APIRouter(prefix="/api/v1/queues", tags=["queues"])


class QueueOut(BaseModel):
    name: str
    depth: int | None = Field(
        description="Messages waiting in the broker (null when the broker could not be asked)."
    )
    paused: bool = Field(description="Workers do not consume a paused queue.")
    consumers: list[str] = Field(description="Workers consuming this queue now.")
    priorities: bool = Field(
        description="Whether the broker starts higher-priority jobs first. False on the "
        "embedded filesystem broker: it is FIFO and ignores priority."
    )

    @classmethod
    def from_info(cls, info: QueueInfo) -> QueueOut:
        return cls(
            name=info.name,
            depth=info.depth,
            paused=info.paused,
            consumers=info.consumers,
            priorities=info.priorities,
        )


class QueueList(BaseModel):
    broker: BrokerKind
    priorities: bool = Field(description="Whether this broker honours job priorities.")
    items: list[QueueOut]


@router.get(
    "",
    dependencies=[Depends(require("read"))],
    responses=error_responses(401, 403, 503),
    summary="List queues",
)
def get_queues(context: Context) -> QueueList:
    """Every configured queue with its depth, paused flag and consumers."""
    infos = list_queues(context.settings, context.store, context.submitter.app)
    return QueueList(
        broker=broker_kind(context.settings),
        priorities=supports_priorities(context.settings),
        items=[QueueOut.from_info(info) for info in infos],
    )


def _set(context: ApiContext, name: str, paused: bool) -> QueueOut:
    try:
        set_paused(context.settings, context.store, name, paused)
    except UnknownQueue as exc:
        raise ApiError(404, "queue_not_found", str(exc), {"queue": name}) from None
    infos = list_queues(context.settings, context.store, context.submitter.app)
    return QueueOut.from_info(next(info for info in infos if info.name == name))


@router.post(
    "/{name}/pause",
    dependencies=[Depends(require("write"))],
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Pause a queue",
)
def pause(name: str, context: Context) -> QueueOut:
    """Workers stop taking jobs from the queue within a few seconds; jobs wait in it."""
    return _set(context, name, True)


@router.post(
    "/{name}/resume",
    dependencies=[Depends(require("write"))],
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Resume a queue",
)
def resume(name: str, context: Context) -> QueueOut:
    """Workers consume the queue again within a few seconds."""
    return _set(context, name, False)
