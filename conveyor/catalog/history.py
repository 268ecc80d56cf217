"""``maintenance.prune_jobs``: delete conveyor's own old job history.

The one catalog task that uses the job store: it opens the store named by the
settings (``conveyor.store.open_store``), because conveyor's history lives there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field

from conveyor.catalog.common import Duration, settings
from conveyor.jobs import FINAL_STATES, JobState
from conveyor.policies.retry import RetryPolicy
from conveyor.store import open_store
from conveyor.task import task


@task(
    name="maintenance.prune_jobs",
    queue="cleanup",
    retry=RetryPolicy(max_retries=3, base_delay=30.0, max_delay=600.0),
    time_limit=1800,
    soft_time_limit=1740,
)
def prune_jobs(
    older_than: Annotated[
        Duration, Field(description="Jobs last updated longer ago than this are deleted.")
    ],
    states: Annotated[
        list[JobState] | None,
        Field(description="States to prune (default: SUCCEEDED, FAILED, DEAD, CANCELLED)."),
    ] = None,
) -> dict[str, Any]:
    """Delete jobs finished (SUCCEEDED, FAILED, DEAD, CANCELLED — or ``states``) and last
    updated more than ``older_than`` ago from conveyor's job store."""
    chosen = states if states is not None else sorted(FINAL_STATES)
    before = datetime.now(UTC) - older_than
    store = open_store(settings())
    try:
        deleted = store.prune_jobs(before, chosen)
    finally:
        store.close()
    return {"deleted": deleted, "before": before.isoformat(), "states": [s.value for s in chosen]}
