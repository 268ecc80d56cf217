"""The flow-control contract: every limiter backend (memory, SQLite, PostgreSQL, Redis).

Not collected by itself. A test module subclasses :class:`LimiterContract` and
provides ``limiter``: a fresh :class:`conveyor.limiter.Limiter` (its buckets
and leases empty), and ``limiters``: a callable opening another one on the same
backend (another worker), and subclasses :class:`QueueStateContract` with a
``store`` fixture.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from conveyor.limiter import Limiter
from conveyor.policies.ratelimit import parse_rate
from conveyor.store.base import JobStore

Opener = Callable[[], Limiter]


def _bucket() -> str:
    return f"test:{uuid.uuid4().hex}"


class Clock:
    """Seconds since the clock was made: a wait handed out ``elapsed`` seconds after the
    first take is due that much earlier (a slow, shared machine must not fail the test)."""

    #: the limiter's clock (a database's, Redis') and ours are read at different moments
    SLACK = 0.03

    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def due_in(self, wait: float, after_first: float) -> bool:
        """``wait`` is what is left of ``after_first`` seconds counted from the first take."""
        return after_first - self.elapsed - self.SLACK <= wait <= after_first + self.SLACK


def _ids() -> Callable[[str], str]:
    """Job ids unique to one test (reservations are kept per job id)."""
    run = uuid.uuid4().hex[:12]
    return lambda name: f"{run}-{name}"


class LimiterContract:
    def test_first_token_is_free_then_the_next_is_reserved(self, limiter: Limiter) -> None:
        bucket, rate, job = _bucket(), parse_rate("2/s"), _ids()
        clock = Clock()
        assert limiter.take(bucket, rate, job("a")) == 0
        wait = limiter.take(bucket, rate, job("b"))
        assert clock.due_in(wait, 0.5), (wait, clock.elapsed)
        # the third job reserves the token after b's
        wait = limiter.take(bucket, rate, job("c"))
        assert clock.due_in(wait, 1.0), (wait, clock.elapsed)

    def test_a_reservation_is_kept_and_used_once(self, limiter: Limiter) -> None:
        bucket, rate, job = _bucket(), parse_rate("1/s"), _ids()
        assert limiter.take(bucket, rate, job("a")) == 0
        first = limiter.take(bucket, rate, job("b"))
        assert first > 0
        again = limiter.take(bucket, rate, job("b"))  # came back early: same token, less to wait
        assert 0 < again <= first
        time.sleep(again + 0.05)  # (a started; the guard window is the period + 30 ms)
        assert limiter.take(bucket, rate, job("b")) == 0  # runs on its reservation
        # the reservation is used up: b's next take is a new token
        assert limiter.take(bucket, rate, job("b")) > 0

    def test_burst_allows_more_at_once(self, limiter: Limiter) -> None:
        bucket, rate, job = _bucket(), parse_rate("1/s;burst=2"), _ids()
        clock = Clock()
        waits = [limiter.take(bucket, rate, job(f"j{i}")) for i in range(4)]
        assert waits[:3] == [0, 0, 0]
        assert clock.due_in(waits[3], 1.0), (waits, clock.elapsed)

    def test_late_jobs_do_not_start_in_a_bunch(self, limiter: Limiter) -> None:
        bucket, rate, job = _bucket(), parse_rate("2/s"), _ids()
        assert limiter.take(bucket, rate, job("a")) == 0
        waits = [limiter.take(bucket, rate, job(name)) for name in "bcd"]  # due +0.5, +1, +1.5
        time.sleep(waits[-1] + 0.1)  # all three come back late, together
        clock = Clock()
        assert limiter.take(bucket, rate, job("b")) == 0
        assert limiter.take(bucket, rate, job("c")) == 0
        # two started within the last second: d waits until the first of them leaves the window
        wait = limiter.take(bucket, rate, job("d"))
        assert clock.due_in(wait, 1.0), (wait, clock.elapsed)

    def test_buckets_are_shared_between_workers(self, limiter: Limiter, limiters: Opener) -> None:
        bucket, rate, job = _bucket(), parse_rate("10/m"), _ids()
        assert limiter.take(bucket, rate, job("a")) == 0
        assert limiters().take(bucket, rate, job("b")) >= 5.9

    def test_concurrent_takes_never_share_a_token(self, limiters: Opener) -> None:
        bucket, rate, run = _bucket(), parse_rate("10/s"), _bucket()

        def worker(n: int) -> None:
            mine = limiters()
            for i in range(3):
                mine.take(bucket, rate, f"{run}-{n}-{i}")

        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait = limiters().take(bucket, rate, f"{run}-last")
        elapsed = time.monotonic() - started
        # 12 tokens 100 ms apart were handed out (none twice): the 13th is due 1.2 s after the
        # first, whatever the interleaving of the four workers
        assert 1.2 - elapsed - 0.05 <= wait <= 1.2 + 0.05, (wait, elapsed)

    def test_concurrency_slots(self, limiter: Limiter, limiters: Opener) -> None:
        key = _bucket()
        assert limiter.acquire(key, "a", 2).acquired
        assert limiters().acquire(key, "b", 2).acquired
        refused = limiter.acquire(key, "c", 2)
        assert not refused.acquired
        assert refused.wait > 0
        assert limiter.acquire(key, "a", 2).acquired  # the holder asking again keeps its slot
        limiter.release(key, "a")
        assert limiters().acquire(key, "c", 2).acquired

    def test_slots_of_different_keys_are_independent(self, limiter: Limiter) -> None:
        assert limiter.acquire(_bucket(), "a", 1).acquired
        assert limiter.acquire(_bucket(), "b", 1).acquired


class ExpiringLeaseContract:
    """Needs ``short_limiters``: an opener of limiters with a 1.5 s lease."""

    def test_an_unrenewed_lease_expires(self, short_limiters: Opener) -> None:
        crashed, other = short_limiters(), short_limiters()
        key = _bucket()
        assert crashed.acquire(key, "a", 1).acquired
        assert not other.acquire(key, "b", 1).acquired
        time.sleep(1.7)
        assert other.acquire(key, "b", 1).acquired

    def test_a_renewed_lease_holds(self, short_limiters: Opener) -> None:
        holder, other = short_limiters(), short_limiters()
        key = _bucket()
        assert holder.acquire(key, "a", 1).acquired
        for _ in range(3):
            time.sleep(0.7)
            holder.renew([(key, "a")])
        assert not other.acquire(key, "b", 1).acquired


class QueueStateContract:
    def test_pause_and_resume(self, store: JobStore) -> None:
        assert store.list_queue_states() == []
        at = datetime(2024, 5, 1, tzinfo=UTC)
        store.set_queue_paused("email", True, at)
        store.set_queue_paused("default", False, at)
        states = {s.name: s.paused for s in store.list_queue_states()}
        assert states == {"default": False, "email": True}
        store.set_queue_paused("email", False, at)
        assert not any(s.paused for s in store.list_queue_states())
        assert store.list_queue_states()[0].updated_at == at

    def test_consumers_are_reported_per_worker(self, store: JobStore) -> None:
        old = datetime(2024, 5, 1, tzinfo=UTC)
        now = datetime(2024, 5, 1, 0, 1, tzinfo=UTC)
        store.record_consumers("w1", ["default", "email"], now)
        store.record_consumers("w2", ["email"], now)
        store.record_consumers("gone", ["default"], old)
        assert store.list_consumers(now) == {"default": ["w1"], "email": ["w1", "w2"]}
        store.record_consumers("w1", [], now)  # w1 paused everything
        assert store.list_consumers(now) == {"email": ["w2"]}
        assert store.list_consumers(old)["default"] == ["gone"]
