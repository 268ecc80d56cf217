"""RQ job functions (RQ enqueues functions by import path)."""

from __future__ import annotations

import time

from bench.suite import probe


def noop() -> None:
    probe.finished(time.time())


def sleep(ms: int) -> None:
    started = time.time()
    time.sleep(ms / 1000)
    probe.finished(started)


def stamp(sent_at: float) -> None:
    probe.started_after(sent_at)


def delayed(index: int) -> None:
    probe.delayed_started(index)
