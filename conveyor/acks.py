"""Deferred acknowledgements: a prefork worker acks a message once its run is recorded.

Record-before-ack means a message is acknowledged only after the job store holds
the run's outcome: if the worker dies in between, the message comes back and the
cancel gate (which reads the store) decides whether it runs again. Celery
acknowledges a late-ack message in the worker's main process as soon as the pool
child returns, so the child used to write its job's events itself, one store
transaction per job, before returning.

In a prefork worker on an event loop (Redis, RabbitMQ) the child no longer waits:
its batch recorder writes the run's events together with other runs' events
(one transaction for many jobs) and then writes the run's key (job id and
attempt) to a pipe the main process created before forking. The main process
holds the acknowledgement of each finished run (``DeferredAcks.defer``, called by
``ConveyorRequest.acknowledge``) until the key arrives, raising the consumer's
prefetch by one per held message so that waiting acks never starve the pool.

What happens when something goes wrong:

* the child dies before its recorder wrote the run: the key never arrives; after
  ``timeout`` seconds the main process acknowledges anyway and logs
  ``record_ack_timeout`` (the same outcome as a record flush that times out);
* the main process stops with acks still held: the broker delivers those messages
  again; the gate finds their runs finished in the store and skips them;
* the pipe is full (the main process is not reading): the child drops the key
  (non-blocking write) and the timeout above acknowledges the message.

Without an event loop (threads, gevent, solo pools, the embedded broker) nothing
is deferred: the task's thread stores its job's events before returning, as before.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import structlog
from celery import bootsteps
from celery.concurrency.prefork import TaskPool as PreforkPool

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


class AckPipe:
    """The pipe from pool children to the main process; created before the pool forks."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)  # a child never blocks on a full pipe
        self.owner = os.getpid()

    def notify(self, keys: Iterable[str]) -> int:
        """Send ``keys`` (called in a pool child); returns how many were dropped."""
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pipe = pipe
        self.timeout = timeout
        self.on_hold = on_hold
        self.on_release = on_release
        self.clock = clock
        self.held: dict[str, list[tuple[float, Ackable]]] = {}
        self.early: dict[str, list[float]] = {}  # keys that came before their ack was asked for

    def defer(self, key: str, request: Ackable) -> None:
        arrived = self.early.get(key)
        if arrived:
            arrived.pop(0)
            if not arrived:
                del self.early[key]
            request.ack_now()
            return
        self.held.setdefault(key, []).append((self.clock() + self.timeout, request))
        self.on_hold()

    def stored(self, keys: Iterable[str]) -> None:
        for key in keys:
            waiting = self.held.get(key)
            if not waiting:
                self.early.setdefault(key, []).append(self.clock() + self.timeout)
                continue
            _, request = waiting.pop(0)
            if not waiting:
                del self.held[key]
            self._release(request)

    def on_readable(self, *_: Any) -> None:
        self.stored(self.pipe.read())

    def sweep(self) -> int:
        """Acknowledge held runs whose record never arrived in time; forget stale early keys."""
        now = self.clock()
        expired = 0
        for key in list(self.held):
            waiting = self.held[key]
            while waiting and waiting[0][0] <= now:
                _, request = waiting.pop(0)
                expired += 1
                log.warning("record_ack_timeout", run=key, timeout=self.timeout)
                self._release(request)
            if not waiting:
                del self.held[key]
        for key in list(self.early):
            kept = [deadline for deadline in self.early[key] if deadline > now]
            if kept:
                self.early[key] = kept
            else:
                del self.early[key]
        return expired

    def release_all(self) -> None:
        """Read what arrived, then acknowledge the rest (the worker is stopping)."""
        self.on_readable()

    @property
    def pending(self) -> int:
        return sum(len(waiting) for waiting in self.held.values())

    def _release(self, request: Ackable) -> None:
        try:
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


def child_pipe() -> AckPipe | None:
    """In a pool child of a worker that defers acks: the pipe to report stored runs."""
    if _pipe is not None and _pipe.owner != os.getpid():
        return _pipe
    return None


def _uses_prefork(c: Any) -> bool:
    return isinstance(getattr(c, "pool", None), PreforkPool)


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
        settings = getattr(c.app, "conveyor_settings", None)
        if settings is None or not settings.record_before_ack:
            return
        if getattr(c, "hub", None) is None or not _uses_prefork(c):
            return
        pipe = AckPipe()
        self.acks = DeferredAcks(
            pipe,
            timeout=max(DEFAULT_TIMEOUT, 3 * settings.record_flush_interval),
            # the consumer's QoS exists only once it started: looked up at each call
            on_hold=lambda: c.qos.increment_eventually(),  # noqa: PLW0108
            on_release=lambda: c.qos.decrement_eventually(),  # noqa: PLW0108
        )
        _pipe, _deferred = pipe, self.acks
        log.info("acks_deferred", timeout=self.acks.timeout)

    def start(self, c: Any) -> None:
        if self.acks is None:
            return
        c.hub.add_reader(self.acks.pipe.read_fd, self.acks.on_readable)
        c.timer.call_repeatedly(SWEEP_INTERVAL, self.acks.sweep)

    def stop(self, c: Any) -> None:
        if self.acks is not None:
            self.acks.release_all()

    def shutdown(self, c: Any) -> None:
        self.stop(c)
