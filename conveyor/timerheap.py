"""A worker bootstep that drops cancelled entries from the event loop's timer heap.

conveyor gives every task a time limit (300 s hard, 240 s soft by default). For each
job it hands to a child, Celery's prefork pool then schedules a timer in the worker's
main process (``AsynPool.on_timeout_set``) and cancels it when the job ends. kombu's
``Timer`` cancels by flagging the entry, which stays in the heap until its time comes:
the main process holds one entry (about 400 bytes with its wrappers) per job of the
last 240 s, e.g. 15 MB at 150 jobs/s and 100 MB at 1,000, and every pool child forked
later starts with a copy (issue #11, docs/bench-notes/memory.md).

Every ``PURGE_INTERVAL`` seconds this step rebuilds the heap without the cancelled
entries, as asyncio's own event loop does with cancelled timer handles. It runs on the
event loop itself (a repeating timer), so nothing else touches the heap meanwhile.
"""

from __future__ import annotations

import heapq
from typing import Any

from celery import bootsteps

#: seconds between two purges (the heap then holds at most this long's cancelled entries)
PURGE_INTERVAL = 10.0
#: fewer cancelled entries than this are left alone (not worth rebuilding the heap)
MIN_CANCELLED = 100


def purge_cancelled(timer: Any, minimum: int = MIN_CANCELLED) -> int:
    """Remove the cancelled entries of kombu ``timer``'s heap (in place); how many."""
    queue: list[Any] = timer._queue
    cancelled = sum(1 for item in queue if item.entry.canceled)
    if cancelled < minimum:
        return 0
    # in place: the timer's scheduler iterates over this very list
    queue[:] = [item for item in queue if not item.entry.canceled]
    heapq.heapify(queue)
    return cancelled


class TimerPurgeStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Worker bootstep (registered in ``engine.create_app``); only with an event loop."""

    requires = ("celery.worker.components:Hub",)

    def __init__(self, w: Any, **kwargs: Any) -> None:
        super().__init__(w, **kwargs)
        self.tref: Any = None

    def include_if(self, w: Any) -> bool:
        return bool(w.use_eventloop)

    def start(self, w: Any) -> None:
        hub = getattr(w, "hub", None)
        if hub is not None:
            self.tref = hub.call_repeatedly(PURGE_INTERVAL, purge_cancelled, hub.timer)

    def stop(self, w: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
