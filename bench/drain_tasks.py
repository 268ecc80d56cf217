"""The no-op conveyor task ``bench/drain.py`` runs (its plain Celery twin: drain_celery.py)."""

from __future__ import annotations

import bench.drain_probe  # noqa: F401  (connects the start/finish probe in every worker)
from conveyor.task import task

TASK = "bench.noop"


@task(name=TASK)
def noop(n: int) -> None:
    """Does nothing: what is measured is everything around it."""
    return None
