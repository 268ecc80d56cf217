"""Deferred acks (conveyor/acks.py): the pipe from pool children and the held acks."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

from conveyor.acks import (
    ATOMIC_WRITE,
    AckPipe,
    DeferredAcks,
    DeferredAcksStep,
    process_alive,
    run_key,
)


class Request:
    def __init__(self) -> None:
        self.acked = 0
        self.requeued = 0
        self.alive = True

    def ack_now(self) -> None:
        self.acked += 1

    def requeue_now(self) -> None:
        self.requeued += 1

    def ran_in_live_process(self) -> bool:
        return self.alive


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _acks(clock: Clock | None = None) -> tuple[DeferredAcks, list[str]]:
    qos: list[str] = []
    pipe = AckPipe()
    acks = DeferredAcks(
        pipe,
        timeout=30,
        on_hold=lambda: qos.append("+"),
        on_release=lambda: qos.append("-"),
        clock=clock or Clock(),
    )
    return acks, qos


def test_an_ack_is_held_until_its_run_is_stored() -> None:
    acks, qos = _acks()
    request = Request()
    acks.defer(run_key("job-1", 0), request)
    assert request.acked == 0
    assert acks.pending == 1
    acks.stored([run_key("job-1", 1)])  # another attempt of the same job: not this one
    assert request.acked == 0
    acks.stored([run_key("job-1", 0)])
    assert request.acked == 1
    assert acks.pending == 0
    assert qos == ["+", "-"]  # prefetch raised while held, lowered when released
    acks.pipe.close()


def test_a_key_that_arrives_first_releases_the_ack_at_once() -> None:
    acks, qos = _acks()
    acks.stored(["job-2:0"])
    request = Request()
    acks.defer("job-2:0", request)
    assert request.acked == 1
    assert qos == []  # never held
    assert acks.early == {}
    acks.pipe.close()


def test_a_run_never_stored_is_acked_after_the_timeout() -> None:
    clock = Clock()
    acks, qos = _acks(clock)
    request = Request()
    acks.defer("job-3:0", request)
    clock.now += 29
    assert acks.sweep() == 0
    assert request.acked == 0
    clock.now += 2
    assert acks.sweep() == 1
    assert request.acked == 1
    assert qos == ["+", "-"]
    acks.stored(["job-3:0"])  # arrives late: remembered, then forgotten after the timeout
    clock.now += 31
    acks.sweep()
    assert acks.early == {}
    acks.pipe.close()


def test_keys_cross_the_pipe_from_a_child() -> None:
    acks, _ = _acks()
    requests = {f"job-{i}:0": Request() for i in range(300)}
    for key, request in requests.items():
        acks.defer(key, request)
    pid = os.fork()
    if pid == 0:  # the pool child
        os._exit(acks.pipe.notify(requests))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # nothing dropped
    acks.on_readable()
    assert all(request.acked == 1 for request in requests.values())
    acks.pipe.close()


def test_a_full_pipe_drops_keys_instead_of_blocking() -> None:
    pipe = AckPipe()
    key = "x" * (ATOMIC_WRITE - 1)
    dropped = 0
    for _ in range(100_000):  # far more than a pipe buffer holds
        dropped += pipe.notify([key])
        if dropped:
            break
    assert dropped == 1
    assert all(len(line) == ATOMIC_WRITE - 1 for line in pipe.read())  # whole keys only
    pipe.close()


def test_a_run_whose_process_died_goes_back_to_the_broker() -> None:
    acks, qos = _acks()
    lost, stored, waiting = Request(), Request(), Request()
    acks.defer("lost:0", lost)
    acks.defer("stored:0", stored)
    acks.defer("waiting:0", waiting)
    acks.pipe.notify(["stored:0"])  # written by the process before it was killed
    lost.alive = stored.alive = False
    assert acks.sweep() == 1
    assert (lost.requeued, lost.acked) == (1, 0)  # runs again; the gate decides
    assert (stored.requeued, stored.acked) == (0, 1)  # its key was in the pipe
    assert (waiting.requeued, waiting.acked) == (0, 0)  # its process lives: still held
    assert acks.pending == 1
    assert qos == ["+", "+", "+", "-", "-"]
    acks.pipe.close()


def test_process_alive_tells_a_zombie_from_a_live_process() -> None:
    assert process_alive(os.getpid())
    assert not process_alive(None)
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    for _ in range(100):  # not yet reaped: a zombie
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    assert not process_alive(pid)
    os.waitpid(pid, 0)
    assert not process_alive(pid)


def test_the_step_sweeps_once_across_consumer_restarts() -> None:
    step = DeferredAcksStep.__new__(DeferredAcksStep)
    step.acks, _ = _acks()
    step._sweeping = False
    timers: list[object] = []
    readers: list[int] = []
    consumer = SimpleNamespace(
        hub=SimpleNamespace(add_reader=lambda fd, cb: readers.append(fd)),
        timer=SimpleNamespace(call_repeatedly=lambda interval, fn: timers.append(fn)),
    )
    step.start(consumer)
    step.start(consumer)  # after a reconnect
    assert len(timers) == 1
    assert len(readers) == 2  # the event loop is new: the pipe is watched again
    step.acks.pipe.close()


def test_runs_stored_together_are_acked_as_one_group() -> None:
    groups: list[int] = []

    def ack_many(requests: list[Request]) -> list[Request]:
        groups.append(len(requests))
        for request in requests[1:]:
            request.acked += 1
        return requests[:1]  # the first one is left to its own ack

    qos: list[str] = []
    acks = DeferredAcks(
        AckPipe(),
        on_hold=lambda: qos.append("+"),
        on_release=lambda: qos.append("-"),
        ack_many=ack_many,  # type: ignore[arg-type]
    )
    requests = [Request() for _ in range(4)]
    for n, request in enumerate(requests):
        acks.defer(run_key(f"job-{n}", 0), request)
    acks.stored([run_key(f"job-{n}", 0) for n in range(4)])
    assert groups == [4]
    assert [request.acked for request in requests] == [1, 1, 1, 1]
    assert qos == ["+"] * 4 + ["-"] * 4
    assert acks.pending == 0
