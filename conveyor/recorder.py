"""Recording job state changes without blocking tasks.

Worker-side hooks hand ``JobEvent``s to a recorder. ``BatchRecorder`` queues
them and a background thread writes them to the store in batches (one
transaction per batch), so a slow or briefly unreachable store never blocks a
task. ``SyncRecorder`` writes immediately (inline mode, tests).
"""

from __future__ import annotations

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
    """Writes events in batches from a daemon thread; ``flush`` waits until all are stored.

    The thread gathers events for up to ``interval`` seconds (or ``batch_size`` of them)
    and writes each batch in one transaction. A ``flush`` (record-before-ack) does not
    wait out the interval: it wakes the thread, which writes at once everything recorded
    so far, so every flush waiting at that moment is served by the same commit (group
    commit). ``flush`` waits only for the events recorded before it was called, so a
    busy threads pool never makes it wait for other threads' later events.
    """

    def __init__(self, store: JobStore, batch_size: int = 200, interval: float = 0.05) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval = interval
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits here for events
        self._stored = threading.Condition(self._lock)  # flushes wait here for the writer
        self._events: list[JobEvent] = []
        self._recorded = 0  # events handed to record() so far
        self._written = 0  # events stored so far (in order: one writer)
        self._urgent = 0  # flushes waiting
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="conveyor-recorder", daemon=True)
        self._thread.start()

    @property
    def _pending(self) -> int:
        return self._recorded - self._written

    def record(self, event: JobEvent) -> None:
        with self._lock:
            self._events.append(event)
            self._recorded += 1
            if len(self._events) == 1 or len(self._events) >= self.batch_size:
                self._work.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._recorded
            if self._written >= target:
                return True
            self._urgent += 1
            self._work.notify()
            try:
                while self._written < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._stored.wait(remaining)
            finally:
                self._urgent -= 1
        return True

    def close(self, timeout: float = 10.0) -> None:
        if not self.flush(timeout):
            log.warning("recorder_flush_timeout", pending=self._pending)
        self._closed = True

    def _take_batch(self) -> list[JobEvent]:
        with self._lock:
            while not self._events:
                self._work.wait()
            deadline = time.monotonic() + self.interval
            while len(self._events) < self.batch_size and not self._urgent:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._work.wait(remaining)
            batch = self._events[: self.batch_size]
            del self._events[: self.batch_size]
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
                self._written += len(batch)
                self._stored.notify_all()
