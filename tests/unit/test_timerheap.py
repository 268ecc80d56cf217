"""The worker's timer heap drops cancelled entries (prefork time limits, issue #11 memory)."""

from __future__ import annotations

from types import SimpleNamespace

from kombu.asynchronous import Hub
from kombu.asynchronous.timer import Timer

from conveyor.engine import create_app
from conveyor.testing import inline_settings
from conveyor.timerheap import PURGE_INTERVAL, TimerPurgeStep, purge_cancelled


def _noop(n: int) -> int:
    return n


def _timer_with(entries: int, cancel_every: int) -> tuple[Timer, list[object]]:
    timer = Timer()
    kept = []
    for n in range(entries):
        entry = timer.call_at(1000.0 + n, _noop, (n,))
        if n % cancel_every:
            entry.cancel()
        else:
            kept.append(entry)
    return timer, kept


def test_cancelled_entries_are_removed_and_the_rest_keep_their_order() -> None:
    timer, kept = _timer_with(1000, cancel_every=4)  # 3 of every 4 cancelled
    assert purge_cancelled(timer) == 750
    assert len(timer._queue) == 250
    assert [item.entry for item in sorted(timer._queue)] == kept
    # still a heap: the earliest entry comes first
    assert timer._queue[0].entry is kept[0]


def test_a_few_cancelled_entries_are_left_alone() -> None:
    timer, _ = _timer_with(50, cancel_every=2)
    assert purge_cancelled(timer) == 0
    assert len(timer._queue) == 50


def test_the_heap_is_purged_in_place_for_the_running_scheduler() -> None:
    timer, kept = _timer_with(400, cancel_every=2)
    queue = timer._queue
    purge_cancelled(timer)
    assert timer._queue is queue
    assert len(queue) == len(kept)


def test_due_entries_still_fire_after_a_purge() -> None:
    timer = Timer()
    fired: list[int] = []
    for n in range(300):
        entry = timer.call_at(float(n), fired.append, (n,))  # all due (monotonic time)
        if n % 3:
            entry.cancel()
    purge_cancelled(timer)
    scheduler = iter(timer)
    while True:
        _, entry = next(scheduler)
        if entry is None:
            break
        entry()
    assert fired == list(range(0, 300, 3))


def test_the_step_purges_the_hub_timer_repeatedly() -> None:
    hub = Hub(Timer())
    worker = SimpleNamespace(use_eventloop=True, hub=hub)
    step = TimerPurgeStep(worker)
    assert step.include_if(worker)
    step.start(worker)
    repeating = [item.entry for item in hub.timer._queue]
    assert step.tref in repeating
    assert step.tref.args == (hub.timer,)
    assert hub.timer._queue[0].eta > 0
    step.stop(worker)
    assert all(item.entry.canceled for item in hub.timer._queue)
    hub.close()


def test_the_step_is_skipped_without_an_event_loop() -> None:
    worker = SimpleNamespace(use_eventloop=False, hub=None)
    assert not TimerPurgeStep(worker).include_if(worker)


def test_every_conveyor_worker_has_the_step() -> None:
    app = create_app(inline_settings())
    assert TimerPurgeStep in app.steps["worker"]
    assert PURGE_INTERVAL > 0
