"""Deferred acknowledgements: a worker acks a message once its run is recorded.

Record-before-ack means a message is acknowledged only after the job store holds
the run's outcome: if the worker dies in between, the message comes back and the
cancel gate (which reads the store) decides whether it runs again. Celery
acknowledges a late-ack message as soon as the task returns, so the task's
process used to write its job's events itself, one store transaction per job,
before returning.

In a prefork or threads worker on an event loop (Redis, RabbitMQ) the task no
longer waits: the batch recorder of its process writes the run's events together
with other runs' events (one transaction for many jobs) and then writes the run's
key (job id and attempt) to a pipe the main process created before forking. The
main process holds the acknowledgement of each finished run
(``DeferredAcks.defer``, called by ``ConveyorRequest.acknowledge``) until the key
arrives, and sends it from its event loop, raising the consumer's prefetch by one
per held message so that waiting acks never starve the pool.

What happens when something goes wrong:

* the pool process dies (is killed) before its recorder wrote the run: the key
  never arrives; the main process sees the process gone and puts the message back
  on the broker (``record_ack_requeued``): the job runs again, as when a process
  dies during a run;
* the store is down: after ``timeout`` seconds the main process acknowledges
  anyway and logs ``record_ack_timeout`` (the recorder keeps the events and writes
  them once the store is back);
* the main process stops with acks still held: the broker delivers those messages
  again; the gate finds their runs finished in the store and skips them;
* the pipe is full (the main process is not reading): the key is dropped
  (non-blocking write) and the timeout above acknowledges the message.

Without an event loop (gevent, solo, the embedded broker) nothing is deferred:
the task's thread stores its job's events before returning.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import structlog
from celery import bootsteps
from celery.concurrency.prefork import TaskPool as PreforkPool
from celery.concurrency.thread import TaskPool as ThreadsPool

from conveyor.ack_batch import ack_together

log = structlog.get_logger("conveyor.worker")

#: a pipe write up to this size is atomic (POSIX PIPE_BUF is at least 512; Linux: 4096)
ATOMIC_WRITE = 512
#: how long a finished run's ack waits for its record before it is acknowledged anyway
DEFAULT_TIMEOUT = 30.0
SWEEP_INTERVAL = 1.0


def run_key(job_id: str, retries: int) -> str:
    """Identifies one run of a job: its id and which attempt (Celery's ``retries``)."""
    return f"{job_id}:{retries}"


class Ackable(Protocol):
    def ack_now(self) -> None: ...
    def requeue_now(self) -> None: ...
    def ran_in_live_process(self) -> bool: ...


class AckPipe:
    """The pipe from pool children to the main process; created before the pool forks."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)  # a child never blocks on a full pipe
        self.owner = os.getpid()

    def notify(self, keys: Iterable[str]) -> int:
        """Send ``keys`` (from a pool child or a task thread); returns how many were dropped."""
        dropped = 0
        for chunk in _chunks([key.encode() + b"\n" for key in keys]):
            try:
                os.write(self.write_fd, chunk)
            except BlockingIOError:
                dropped += chunk.count(b"\n")
            except OSError as exc:  # the main process is gone
                log.warning("record_ack_notify_failed", error=str(exc))
                dropped += chunk.count(b"\n")
        return dropped

    def read(self) -> list[str]:
        """Every key waiting in the pipe (called in the main process)."""
        data = bytearray()
        while True:
            try:
                part = os.read(self.read_fd, 65536)
            except BlockingIOError:
                break
            if not part:
                break
            data += part
        return [line.decode() for line in bytes(data).splitlines() if line]

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def process_alive(pid: int | None) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False
    except (PermissionError, OSError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _chunks(lines: list[bytes]) -> Iterable[bytes]:
    chunk = b""
    for line in lines:
        if chunk and len(chunk) + len(line) > ATOMIC_WRITE:
            yield chunk
            chunk = b""
        chunk += line
    if chunk:
        yield chunk


class DeferredAcks:
    """Held acknowledgements in the worker's main process, released as keys arrive."""

    def __init__(
        self,
        pipe: AckPipe,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        on_hold: Callable[[], None] = lambda: None,
        on_release: Callable[[], None] = lambda: None,
        ack_many: Callable[[list[Ackable]], list[Ackable]] = list,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipe = pipe
        self.timeout = timeout
        self.on_hold = on_hold
        self.on_release = on_release
        #: acknowledges what it can of a group at once; returns the rest (default: none)
        self.ack_many = ack_many
        self.clock = clock
        self._lock = threading.Lock()  # a threads pool defers from its task threads
        self.held: dict[str, list[tuple[float, Ackable]]] = {}
        self.early: dict[str, list[float]] = {}  # keys that came before their ack was asked for

    def defer(self, key: str, request: Ackable) -> None:
        """Hold ``request``'s ack until ``key`` arrives (at once if it already did)."""
        with self._lock:
            arrived = self.early.get(key)
            if not arrived:
                # counted before it can be released (by the event loop's thread)
                self.on_hold()
                self.held.setdefault(key, []).append((self.clock() + self.timeout, request))
                return
            arrived.pop(0)
            if not arrived:
                del self.early[key]
        request.ack_now()

    def stored(self, keys: Iterable[str]) -> None:
        released: list[Ackable] = []
        with self._lock:
            for key in keys:
                waiting = self.held.get(key)
                if not waiting:
                    self.early.setdefault(key, []).append(self.clock() + self.timeout)
                    continue
                released.append(waiting.pop(0)[1])
                if not waiting:
                    del self.held[key]
        if not released:
            return
        rest = self.ack_many(released)
        for _ in range(len(released) - len(rest)):
            self.on_release()
        for request in rest:
            self._release(request)

    def on_readable(self, *_: Any) -> None:
        self.stored(self.pipe.read())

    def sweep(self) -> int:
        """Settle held runs whose record will not arrive; forget stale early keys.

        First the keys already in the pipe are taken. A run whose pool process has
        died since (killed before its recorder wrote the run) goes back to the broker
        to run again: the gate skips it if it was stored after all. A run still waiting
        after ``timeout`` (the store is down that long) is acknowledged, as a record
        flush that times out is. Returns how many runs were settled so.
        """
        self.on_readable()
        expired: list[tuple[str, Ackable]] = []
        lost: list[tuple[str, Ackable]] = []
        with self._lock:
            now = self.clock()
            for key in list(self.held):
                kept = []
                for deadline, request in self.held[key]:
                    if not request.ran_in_live_process():
                        lost.append((key, request))
                    elif deadline <= now:
                        expired.append((key, request))
                    else:
                        kept.append((deadline, request))
                if kept:
                    self.held[key] = kept
                else:
                    del self.held[key]
            for key in list(self.early):
                deadlines = [deadline for deadline in self.early[key] if deadline > now]
                if deadlines:
                    self.early[key] = deadlines
                else:
                    del self.early[key]
        for key, request in lost:
            log.warning("record_ack_requeued", run=key, reason="pool process died")
            self._release(request, requeue=True)
        for key, request in expired:
            log.warning("record_ack_timeout", run=key, timeout=self.timeout)
            self._release(request)
        return len(expired) + len(lost)

    @property
    def pending(self) -> int:
        return sum(len(waiting) for waiting in self.held.values())

    def _release(self, request: Ackable, *, requeue: bool = False) -> None:
        try:
            if requeue:
                request.requeue_now()
            else:
                request.ack_now()
        finally:
            self.on_release()


# -- this process's role --------------------------------------------------------
_pipe: AckPipe | None = None
_deferred: DeferredAcks | None = None


def deferred() -> DeferredAcks | None:
    """The main process's held acks, when acks are deferred in this worker."""
    if _deferred is not None and _deferred.pipe.owner == os.getpid():
        return _deferred
    return None


def run_pipe() -> AckPipe | None:
    """In a worker that defers acks (its pool children, its task threads): the pipe on
    which to report stored runs."""
    return _pipe


def _runs_tasks_apart(c: Any) -> bool:
    """Prefork children or a threads pool: tasks run outside the event loop's thread."""
    return isinstance(getattr(c, "pool", None), (PreforkPool, ThreadsPool))


class DeferredAcksStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer bootstep (registered in ``engine.create_app``): sets up deferred acks.

    Its ``__init__`` runs while the worker is built, before the pool forks its
    children, so they inherit the pipe.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        global _pipe, _deferred
        super().__init__(c, **kwargs)
        self.acks: DeferredAcks | None = None
        self._sweeping = False  # the sweep timer outlives a consumer restart (reconnect)
        settings = getattr(c.app, "conveyor_settings", None)
        if settings is None or not settings.record_before_ack:
            return
        if getattr(c, "hub", None) is None or not _runs_tasks_apart(c):
            return
        pipe = AckPipe()
        self.acks = DeferredAcks(
            pipe,
            timeout=max(DEFAULT_TIMEOUT, 3 * settings.record_flush_interval),
            # the consumer's QoS exists only once it started: looked up at each call
            on_hold=lambda: c.qos.increment_eventually(),  # noqa: PLW0108
            on_release=lambda: c.qos.decrement_eventually(),  # noqa: PLW0108
            ack_many=ack_together,
        )
        _pipe, _deferred = pipe, self.acks
        log.info("acks_deferred", timeout=self.acks.timeout)

    def start(self, c: Any) -> None:
        if self.acks is None:
            return
        c.hub.add_reader(self.acks.pipe.read_fd, self.acks.on_readable)
        if not self._sweeping:
            c.timer.call_repeatedly(SWEEP_INTERVAL, self.acks.sweep)
            self._sweeping = True

    def stop(self, c: Any) -> None:
        # acknowledge the runs whose keys are in the pipe; the rest come back from the
        # broker and the gate skips the finished ones
        if self.acks is not None:
            self.acks.on_readable()

    def shutdown(self, c: Any) -> None:
        self.stop(c)
