"""conveyor's benchmark tasks (typed, recorded, with every default hook)."""

from __future__ import annotations

import time

from bench.suite import probe
from conveyor.task import task


@task(name="bench.noop")
def noop() -> None:
    probe.finished(time.time())


@task(name="bench.sleep")
def sleep(ms: int) -> None:
    started = time.time()
    time.sleep(ms / 1000)
    probe.finished(started)


@task(name="bench.stamp")
def stamp(sent_at: float) -> None:
    probe.started_after(sent_at)


@task(name="bench.delayed")
def delayed(index: int) -> None:
    probe.delayed_started(index)
