"""The task ``bench/ratelimit.py`` runs (imported by its workers via CONVEYOR_IMPORTS)."""

from __future__ import annotations

import os
import time

from conveyor.policies.ratelimit import Limit
from conveyor.task import task

TASK = "bench.tick"
FREE_TASK = "bench.free"
#: the limit the workers enforce; the bench process sets it through this variable
RATE_ENV = "CONVEYOR_BENCH_RATE"


@task(name=TASK, rate_limit=Limit("bench-ratelimit", os.environ.get(RATE_ENV, "50/s")))
def tick(n: int) -> float:
    """Start time of this run (epoch seconds)."""
    return time.time()


@task(name=FREE_TASK)
def free(n: int) -> float:
    """The same task without a limit (the machine's baseline)."""
    return time.time()
