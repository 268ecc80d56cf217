"""``/api/v1/tasks``: every registered task with the schema of its arguments."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from conveyor.api.auth import require
from conveyor.api.context import Context
from conveyor.api.errors import error_responses
from conveyor.api.schemas import TaskOut

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.get(
    "",
    dependencies=[Depends(require("read"))],
    responses=error_responses(401, 403),
    summary="List tasks",
)
async def list_tasks(context: Context) -> list[TaskOut]:
    return [TaskOut.from_spec(spec, context.settings) for spec in context.tasks]
