"""What every route needs (settings, store, submitter, tasks, authenticator), as a dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from conveyor.keys import Authenticator
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.submit import Submitter
from conveyor.task import TaskRegistry


@dataclass(frozen=True, slots=True)
class ApiContext:
    settings: Settings
    store: JobStore
    submitter: Submitter
    tasks: TaskRegistry
    authenticator: Authenticator


async def get_context(request: Request) -> ApiContext:
    context = request.app.state.conveyor
    if not isinstance(context, ApiContext):
        raise RuntimeError("the conveyor API context is missing; build the app with create_api()")
    return context


Context = Annotated[ApiContext, Depends(get_context)]
