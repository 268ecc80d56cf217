"""SYNTHETIC activity for ``conveyor up --example mluvme``: not part of the seed.

The seed's schedules are daily, hourly or every 30 minutes; a newcomer wants to
see jobs flow now. ``mluvme.simulate_activity`` writes a few messages from
synthetic users (``synthetic-user-N``) and submits the jobs a real message
would cause (daily challenge progress at 3 or 4 messages, milestone bonuses).
``app.py`` schedules it every 15 seconds through configuration, not code, so the
code schedules stay exactly the seed's beat table.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from conveyor.task import task
from examples.mluvme.activity import submit_follow_ups
from examples.mluvme.clock import resolve_now
from examples.mluvme.db import session
from examples.mluvme.dispatch import worker_submitter
from examples.mluvme.synthetic import add_activity


@task(name="mluvme.simulate_activity", queue="default")
def simulate_activity(
    messages: Annotated[int, Field(ge=1, le=50)] = 3,
    seed: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """SYNTHETIC: ``messages`` new messages from synthetic users, and their follow-up jobs."""
    moment = resolve_now(now)
    with session() as db:
        activities = add_activity(db, random.Random(seed), moment, messages)
    submitter = worker_submitter()
    jobs = [job for activity in activities for job in submit_follow_ups(submitter, activity)]
    return {
        "synthetic": True,
        "messages": len(activities),
        "follow_ups": [{"task": job.task, "job_id": job.id} for job in jobs],
    }
