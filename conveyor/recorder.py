"""Recording job state changes without blocking tasks.

Worker-side hooks hand ``JobEvent``s to a recorder. ``BatchRecorder`` queues
them and a background thread writes them to the store in batches (one
transaction per batch), so a slow or briefly unreachable store never blocks a
task. ``SyncRecorder`` writes immediately (inline mode, tests).
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Protocol

import structlog

from conveyor.jobs import JobEvent
from conveyor.store.base import JobStore

log = structlog.get_logger("conveyor.recorder")

_MAX_BACKOFF = 5.0


class Recorder(Protocol):
    def record(self, event: JobEvent) -> None: ...
    def flush(self, timeout: float = 10.0) -> bool: ...
    def close(self, timeout: float = 10.0) -> None: ...


class SyncRecorder:
    def __init__(self, store: JobStore) -> None:
        self.store = store

    def record(self, event: JobEvent) -> None:
        self.store.apply_events([event])

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def close(self, timeout: float = 10.0) -> None:
        return None


class BatchRecorder:
    """Writes events in batches from a daemon thread; ``flush`` waits until all are stored."""

    def __init__(self, store: JobStore, batch_size: int = 200, interval: float = 0.05) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval = interval
        self._queue: queue.SimpleQueue[JobEvent] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="conveyor-recorder", daemon=True)
        self._thread.start()

    def record(self, event: JobEvent) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put(event)

    def flush(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        if not self.flush(timeout):
            log.warning("recorder_flush_timeout", pending=self._pending)
        self._closed = True

    def _take_batch(self) -> list[JobEvent]:
        batch = [self._queue.get()]
        deadline = time.monotonic() + self.interval
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[JobEvent]) -> None:
        backoff = 0.1
        while True:
            try:
                self.store.apply_events(batch)
                return
            except Exception as exc:  # the store may be briefly down: keep the events
                log.warning("record_failed", error=str(exc), events=len(batch), retry_in=backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            self._write(batch)
            with self._lock:
                self._pending -= len(batch)
                self._lock.notify_all()
