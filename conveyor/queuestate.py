"""A worker bootstep that follows paused queues: stop consuming a paused queue, resume later.

A thread polls the job store every ``queue_state_interval`` seconds and reports
the queues this worker consumes (for ``GET /api/v1/queues``); changes are
applied on the consumer's own loop (``call_soon``) with Celery's
``cancel_task_queue`` / ``add_task_queue``. Paused queues are dropped before the
consumer starts, so a worker started later never takes a message from them.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from celery import bootsteps

from conveyor.jobs import utcnow
from conveyor.settings import Settings
from conveyor.store.base import JobStore
from conveyor.store.factory import open_store

log = structlog.get_logger("conveyor.worker")


def paused_queues(store: JobStore) -> set[str]:
    return {state.name for state in store.list_queue_states() if state.paused}


class QueueStateStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer bootstep (registered in ``engine.create_app``)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.settings: Settings = c.app.conveyor_settings
        self.store: JobStore | None = None
        self.wanted: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, c: Any) -> None:
        self.store = open_store(self.settings)
        if not self.wanted:  # the queues this worker was started for (kept across reconnects)
            self.wanted = sorted(c.app.amqp.queues.consume_from)
        self._stop.clear()
        try:
            self.apply(c, paused_queues(self.store))
        except Exception as exc:  # the store is down: consume everything, poll later
            log.warning("queue_state_unavailable", error=str(exc))
        self._thread = threading.Thread(
            target=self._poll, args=(c,), name="conveyor-queue-state", daemon=True
        )
        self._thread.start()

    def stop(self, c: Any) -> None:
        self._stop.set()

    def shutdown(self, c: Any) -> None:
        self._stop.set()
        if self.store is not None:
            self.store.close()

    def apply(self, c: Any, paused: set[str]) -> None:
        """Consume exactly the wanted queues that are not paused (runs on the consumer loop)."""
        consumer = c.task_consumer
        if consumer is None:
            return
        # the consumer's queue list, not its active tags: at start it has not consumed yet
        listed = {queue.name for queue in consumer.queues}
        for name in self.wanted:
            consuming = name in listed
            if name in paused and consuming:
                c.cancel_task_queue(name)
                log.info("queue_paused", queue=name, worker=c.hostname)
            elif name not in paused and not consuming:
                c.add_task_queue(name)
                log.info("queue_resumed", queue=name, worker=c.hostname)

    def _poll(self, c: Any) -> None:
        while not self._stop.wait(self.settings.queue_state_interval):
            store = self.store
            if store is None:
                return
            try:
                paused = paused_queues(store)
                consuming = [name for name in self.wanted if name not in paused]
                store.record_consumers(c.hostname, consuming, utcnow())
            except Exception as exc:  # keep consuming as before; try again next round
                log.warning("queue_state_unavailable", error=str(exc))
                continue
            c.call_soon(self.apply, c, paused)
