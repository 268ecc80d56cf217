"""Recording job state changes without blocking tasks.

Worker-side hooks hand ``JobEvent``s to a recorder. ``BatchRecorder`` queues
them and a background thread writes them to the store in batches (one
transaction per batch), so a slow or briefly unreachable store never blocks a
task. ``SyncRecorder`` writes immediately (inline mode, tests).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import structlog

from conveyor.jobs import JobEvent
from conveyor.store.base import JobStore

log = structlog.get_logger("conveyor.recorder")

_MAX_BACKOFF = 5.0


class Recorder(Protocol):
    def record(self, event: JobEvent) -> None: ...
    def flush(self, timeout: float = 10.0) -> bool: ...
    def flush_job(self, job_id: str, timeout: float = 10.0) -> bool: ...
    def when_stored(self, job_id: str, callback: Callable[[], object]) -> None: ...
    def close(self, timeout: float = 10.0) -> None: ...


class SyncRecorder:
    def __init__(self, store: JobStore) -> None:
        self.store = store

    def record(self, event: JobEvent) -> None:
        self.store.apply_events([event])

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def flush_job(self, job_id: str, timeout: float = 10.0) -> bool:
        return True

    def when_stored(self, job_id: str, callback: Callable[[], object]) -> None:
        _call(callback)

    def close(self, timeout: float = 10.0) -> None:
        return None


def _call(callback: Callable[[], object]) -> None:
    try:
        callback()
    except Exception as exc:  # a failing callback must not stop the recorder
        log.exception("recorder_callback_failed", error=exc)


class _Batch:
    """Events taken for one write (in record order) and the jobs they touch."""

    __slots__ = ("events", "first", "job_ids")

    def __init__(self, entries: list[tuple[int, JobEvent]]) -> None:
        self.events = entries
        self.first = entries[0][0]
        self.job_ids = {event.job_id for _, event in entries}


class BatchRecorder:
    """Writes events in batches; ``flush`` returns once every event recorded before it is stored.

    A daemon thread gathers events for up to ``interval`` seconds (or ``batch_size`` of
    them) and writes each batch in one transaction, so a job's STARTED is stored soon
    even if nothing flushes. A ``flush`` (record-before-ack) does not hand its events to
    that thread and wait for it: the flushing thread takes everything recorded so far and
    writes it itself, in one transaction (group commit: one write serves every event
    pending at that moment); ``flush_job`` (what the worker calls before an ack) writes
    only that job's events and waits for nothing else. Up to ``writers`` batches are
    written at once (a threads pool's flushes run in parallel instead of queueing behind
    one writer; SQLite: 1).
    A job's events are never in two batches in flight at once, so they are applied in
    the order they were recorded. If a write fails, its events go back to the queue and
    the daemon thread retries them with backoff; flushes wait for it.
    """

    def __init__(
        self, store: JobStore, batch_size: int = 200, interval: float = 0.05, writers: int = 1
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.interval = interval
        self.writers = max(writers, 1)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the daemon thread waits here for events
        self._stored = threading.Condition(self._lock)  # flushes wait here for writes
        self._pending: deque[tuple[int, JobEvent]] = deque()  # (sequence number, event)
        self._inflight: list[_Batch] = []
        self._recorded = 0  # sequence number of the last event handed to record()
        self._watchers: list[tuple[int, int, Callable[[], object]]] = []  # heap: (through, n, cb)
        self._watch_count = 0
        self._failing = False  # the last write failed: only the daemon thread retries
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="conveyor-recorder", daemon=True)
        self._thread.start()

    @property
    def _pending_count(self) -> int:
        return len(self._pending) + sum(len(batch.events) for batch in self._inflight)

    def _stored_through(self) -> int:
        """Every event up to this sequence number is stored (call with the lock held)."""
        firsts = [batch.first for batch in self._inflight]
        if self._pending:
            firsts.append(self._pending[0][0])
        return min(firsts) - 1 if firsts else self._recorded

    def record(self, event: JobEvent) -> None:
        with self._lock:
            self._recorded += 1
            self._pending.append((self._recorded, event))
            if len(self._pending) == 1 or len(self._pending) >= self.batch_size:
                self._work.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        with self._lock:
            target = self._recorded
            return self._write_until(lambda: self._stored_through() >= target, None, timeout)

    def flush_job(self, job_id: str, timeout: float = 10.0) -> bool:
        """Store ``job_id``'s recorded events now, in this thread; wait until they are stored.

        Record-before-ack needs only the job's own events stored: a flush of one job does
        not wait for other jobs' writes (a threads pool's flushes run side by side) unless
        one of them holds an earlier event of this job.
        """
        with self._lock:
            return self._write_until(lambda: not self._unfinished(job_id), job_id, timeout)

    def when_stored(self, job_id: str, callback: Callable[[], object]) -> None:
        """Call ``callback`` once every event recorded so far is stored (``job_id``'s included).

        Nothing waits: the callback runs in whichever thread finishes that write (or here,
        at once, when nothing is pending). It must be quick and must not use the recorder.
        Every event recorded so far, not only the job's: in a prefork child one job runs at
        a time, so they are the job's own events and the few written with them.
        """
        with self._lock:
            if self._stored_through() < self._recorded:
                self._watch_count += 1
                heapq.heappush(self._watchers, (self._recorded, self._watch_count, callback))
                return
        _call(callback)

    def _write_until(self, done: Callable[[], bool], only: str | None, timeout: float) -> bool:
        """Write pending batches (``only``: that job's events) in this thread until ``done``;
        wait for other writers when there is nothing to take. False on timeout. Lock held."""
        deadline = time.monotonic() + timeout
        while not done():
            batch = None if self._failing else self._take(only)
            if batch is not None:
                self._write_here(batch)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._stored.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        if not self.flush(timeout):
            log.warning("recorder_flush_timeout", pending=self._pending_count)
        self._closed = True

    # -- taking and finishing batches (with the lock held) ------------------------
    def _unfinished(self, job_id: str) -> bool:
        """Whether an event of ``job_id`` is still pending or being written."""
        return any(event.job_id == job_id for _, event in self._pending) or any(
            job_id in batch.job_ids for batch in self._inflight
        )

    def _take(self, only: str | None = None) -> _Batch | None:
        """The next batch to write: pending events of jobs that have no batch in flight.

        ``only``: just the events of that job.
        """
        if len(self._inflight) >= self.writers or not self._pending:
            return None
        busy = set().union(*(batch.job_ids for batch in self._inflight))
        taken: list[tuple[int, JobEvent]] = []
        kept: deque[tuple[int, JobEvent]] = deque()
        for entry in self._pending:
            job_id = entry[1].job_id
            wanted = only is None or job_id == only
            if wanted and len(taken) < self.batch_size and job_id not in busy:
                taken.append(entry)
            else:
                busy.add(job_id)  # its later events wait behind this one
                kept.append(entry)
        if not taken:
            return None
        self._pending = kept
        batch = _Batch(taken)
        self._inflight.append(batch)
        return batch

    def _finish(self, batch: _Batch, stored: bool) -> None:
        self._inflight.remove(batch)
        if not stored:  # back to the queue, in record order, for the daemon thread's retry
            self._pending = deque(sorted([*batch.events, *self._pending], key=lambda e: e[0]))
        self._failing = not stored
        self._stored.notify_all()
        if stored and self._watchers:
            through = self._stored_through()
            while self._watchers and self._watchers[0][0] <= through:
                _call(heapq.heappop(self._watchers)[2])
        if self._pending:  # the daemon thread writes (or retries) what is left
            self._work.notify()

    def _write_here(self, batch: _Batch) -> None:
        """Write ``batch`` in the calling (flushing) thread, without the lock held.

        Whatever interrupts the write (e.g. a soft time limit raised in the task's
        thread), the batch is finished: unless it was stored, its events go back to the
        queue for the daemon thread.
        """
        stored = False
        self._lock.release()
        try:
            stored = self._apply(batch)
        finally:
            self._lock.acquire()
            self._finish(batch, stored)

    def _apply(self, batch: _Batch) -> bool:
        try:
            self.store.apply_events([event for _, event in batch.events])
        except Exception as exc:  # the store may be briefly down: keep the events
            log.warning("record_failed", error=str(exc), events=len(batch.events))
            return False
        return True

    # -- the daemon thread ----------------------------------------------------------
    def _take_batch(self) -> _Batch:
        with self._lock:
            while True:
                while not self._pending:
                    self._work.wait()
                deadline = time.monotonic() + self.interval
                while len(self._pending) < self.batch_size:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._work.wait(remaining)
                batch = self._take()
                if batch is not None:
                    return batch
                if self._pending:  # every writer slot is busy, or its jobs are
                    self._stored.wait(self.interval)

    def _write(self, batch: _Batch) -> None:
        backoff = 0.1
        while not self._apply(batch):
            time.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            self._write(batch)
            with self._lock:
                self._finish(batch, True)
