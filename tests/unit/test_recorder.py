from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from conveyor.jobs import Job, JobEvent, JobState
from conveyor.recorder import BatchRecorder
from conveyor.store.memory import MemoryStore


class CountingStore(MemoryStore):
    """A memory store that records batch sizes and can fail the first writes."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.failures = failures
        self.gate = threading.Event()
        self.gate.set()
        self.writing = threading.Event()  # a write has begun

    def apply_events(self, events: Sequence[JobEvent]) -> int:
        self.writing.set()
        self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store down")
        self.batches.append(len(events))
        return super().apply_events(events)


def _jobs(store: MemoryStore, n: int) -> list[str]:
    ids = [f"job-{i}" for i in range(n)]
    for job_id in ids:
        store.create_job(Job(id=job_id, task="t", queue="default", state=JobState.QUEUED))
    return ids


def test_events_are_written_in_batches() -> None:
    store = CountingStore()
    ids = _jobs(store, 50)
    store.gate.clear()  # hold the writer so events pile up
    recorder = BatchRecorder(store, batch_size=20, interval=0.5)
    for job_id in ids:
        recorder.record(JobEvent(job_id, JobState.STARTED, attempt=1))
    store.gate.set()
    assert recorder.flush(5)
    assert sum(store.batches) == 50
    assert max(store.batches) <= 20
    assert len(store.batches) < 50
    assert all(store.get_job(i).state is JobState.STARTED for i in ids)  # type: ignore[union-attr]


def test_a_store_outage_delays_but_loses_nothing() -> None:
    store = CountingStore(failures=2)
    (job_id,) = _jobs(store, 1)
    recorder = BatchRecorder(store, batch_size=10, interval=0.01)
    recorder.record(JobEvent(job_id, JobState.STARTED, attempt=1))
    recorder.record(JobEvent(job_id, JobState.SUCCEEDED, attempt=1, result={"ok": True}))
    assert recorder.flush(10)
    job = store.get_job(job_id)
    assert job is not None
    assert job.state is JobState.SUCCEEDED
    assert job.result == {"ok": True}


def test_record_never_blocks_on_a_stuck_store() -> None:
    store = CountingStore()
    (job_id,) = _jobs(store, 1)
    store.gate.clear()
    recorder = BatchRecorder(store, interval=0.01)
    done = threading.Event()

    def produce() -> None:
        for _ in range(1000):
            recorder.record(JobEvent(job_id, JobState.STARTED, attempt=1))
        done.set()

    threading.Thread(target=produce).start()
    assert done.wait(2), "record() blocked while the store was stuck"
    # the recorder's thread is stuck in a write: a flush waits for it, up to its timeout
    # (a flush's own write, in the flushing thread, is bounded by the store's timeouts)
    assert store.writing.wait(2)
    assert not recorder.flush(0.2)
    store.gate.set()
    assert recorder.flush(10)


def test_a_flush_writes_at_once_instead_of_waiting_out_the_interval() -> None:
    store = CountingStore()
    (job_id,) = _jobs(store, 1)
    recorder = BatchRecorder(store, batch_size=200, interval=60.0)
    recorder.record(JobEvent(job_id, JobState.STARTED, attempt=1))
    assert recorder.flush(5), "flush waited for the 60 s batching interval"
    assert store.batches == [1]


class SecondWriteBlocks(CountingStore):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.release = threading.Event()

    def apply_events(self, events: Sequence[JobEvent]) -> int:
        self.writes += 1
        if self.writes == 2:
            self.release.wait(10)
        return super().apply_events(events)


def test_a_flush_waits_only_for_the_events_recorded_before_it() -> None:
    store = SecondWriteBlocks()
    first, second = _jobs(store, 2)
    recorder = BatchRecorder(store, batch_size=200, interval=60.0)
    recorder.record(JobEvent(first, JobState.STARTED, attempt=1))
    assert recorder.flush(5)
    recorder.record(JobEvent(second, JobState.STARTED, attempt=1))
    stuck = threading.Thread(target=recorder.flush, args=(10,))
    stuck.start()  # its write (the second) blocks in the store
    recorder.record(JobEvent(first, JobState.SUCCEEDED, attempt=1))
    assert not recorder.flush(0.3)  # waits for the blocked write, which holds its event back
    store.release.set()
    assert recorder.flush(5)
    stuck.join(5)
    assert store.get_job(first).state is JobState.SUCCEEDED  # type: ignore[union-attr]


def test_concurrent_flushes_share_one_commit() -> None:
    store = CountingStore()
    ids = _jobs(store, 4)
    store.gate.clear()  # the writer is held: every flush below is waiting at once
    recorder = BatchRecorder(store, batch_size=200, interval=60.0)
    results: list[bool] = []
    threads = []
    for job_id in ids:
        recorder.record(JobEvent(job_id, JobState.STARTED, attempt=1))
        thread = threading.Thread(target=lambda: results.append(recorder.flush(10)))
        thread.start()
        threads.append(thread)
    store.gate.set()
    for thread in threads:
        thread.join(10)
    assert results == [True] * 4
    assert sum(store.batches) == 4 and len(store.batches) <= 2


class WriteLog(MemoryStore):
    """A memory store noting every write: which thread, which events; the first can block."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        super().__init__()
        self.writes: list[tuple[int, list[tuple[str, JobState]]]] = []
        self.barrier = barrier
        self.writing = threading.Event()
        self.release_first = threading.Event()
        self.release_first.set()

    def apply_events(self, events: Sequence[JobEvent]) -> int:
        first = not self.writing.is_set()
        self.writing.set()
        if self.barrier is not None:
            self.barrier.wait()  # BrokenBarrierError unless another write runs at the same time
        if first:
            self.release_first.wait(10)
        self.writes.append((threading.get_ident(), [(e.job_id, e.state) for e in events]))
        return super().apply_events(events)


def test_a_flush_writes_in_the_flushing_thread() -> None:
    store = WriteLog()
    (job_id,) = _jobs(store, 1)
    recorder = BatchRecorder(store, batch_size=200, interval=60.0)
    recorder.record(JobEvent(job_id, JobState.STARTED, attempt=1))
    recorder.record(JobEvent(job_id, JobState.SUCCEEDED, attempt=1))
    assert recorder.flush(5)
    # no hand-over to the recorder's thread: one write, by the caller, with both events
    assert store.writes == [
        (threading.get_ident(), [(job_id, JobState.STARTED), (job_id, JobState.SUCCEEDED)])
    ]


def test_flushes_from_two_threads_write_at_the_same_time() -> None:
    store = WriteLog(barrier=threading.Barrier(2, timeout=5))
    first, second = _jobs(store, 2)
    recorder = BatchRecorder(store, batch_size=200, interval=60.0, writers=2)
    results: list[bool] = []

    def run(job_id: str) -> None:
        recorder.record(JobEvent(job_id, JobState.STARTED, attempt=1))
        results.append(recorder.flush(10))

    one = threading.Thread(target=run, args=(first,))
    one.start()
    assert store.writing.wait(5)  # the first flush is writing (and waits at the barrier)
    two = threading.Thread(target=run, args=(second,))
    two.start()
    one.join(10)
    two.join(10)
    assert results == [True, True]
    assert len(store.writes) == 2  # one write per flush, both in flight at once
    assert {w[0] for w in store.writes} == {one.ident, two.ident}


def test_a_jobs_events_are_never_in_two_writes_at_once() -> None:
    store = WriteLog()
    busy, other = _jobs(store, 2)
    store.release_first.clear()
    recorder = BatchRecorder(store, batch_size=200, interval=60.0, writers=2)
    recorder.record(JobEvent(busy, JobState.STARTED, attempt=1))
    stuck = threading.Thread(target=recorder.flush, args=(10,))
    stuck.start()
    assert store.writing.wait(5)  # busy's STARTED is being written (held)
    recorder.record(JobEvent(busy, JobState.SUCCEEDED, attempt=1))
    recorder.record(JobEvent(other, JobState.STARTED, attempt=1))
    assert not recorder.flush(0.3)  # writes other's event, waits for busy's
    assert [events for _, events in store.writes] == [[(other, JobState.STARTED)]]
    store.release_first.set()
    assert recorder.flush(5)
    stuck.join(5)
    order = [e for _, events in store.writes for e in events if e[0] == busy]
    assert order == [(busy, JobState.STARTED), (busy, JobState.SUCCEEDED)]
    assert store.get_job(busy).state is JobState.SUCCEEDED  # type: ignore[union-attr]


def test_a_jobs_flush_does_not_wait_for_other_jobs_writes() -> None:
    store = WriteLog()
    slow, fast = _jobs(store, 2)
    store.release_first.clear()
    recorder = BatchRecorder(store, batch_size=200, interval=60.0, writers=2)
    recorder.record(JobEvent(slow, JobState.STARTED, attempt=1))
    held = threading.Thread(target=recorder.flush_job, args=(slow, 10))
    held.start()
    assert store.writing.wait(5)  # slow's write is held in the store
    recorder.record(JobEvent(fast, JobState.STARTED, attempt=1))
    recorder.record(JobEvent(fast, JobState.SUCCEEDED, attempt=1))
    assert recorder.flush_job(fast, 2)  # a whole-recorder flush would wait for slow's write
    assert store.get_job(fast).state is JobState.SUCCEEDED  # type: ignore[union-attr]
    assert store.get_job(slow).state is JobState.QUEUED  # type: ignore[union-attr]
    assert not recorder.flush(0.2)
    store.release_first.set()
    held.join(5)
    assert recorder.flush(5)


def test_a_jobs_flush_writes_only_that_jobs_events() -> None:
    store = WriteLog()
    mine, other = _jobs(store, 2)
    recorder = BatchRecorder(store, batch_size=200, interval=60.0)
    recorder.record(JobEvent(other, JobState.STARTED, attempt=1))
    recorder.record(JobEvent(mine, JobState.STARTED, attempt=1))
    assert recorder.flush_job(mine, 5)
    assert [events for _, events in store.writes] == [[(mine, JobState.STARTED)]]
    assert recorder.flush(5)  # the rest is still written
    assert store.get_job(other).state is JobState.STARTED  # type: ignore[union-attr]


class InterruptedOnce(MemoryStore):
    """The first write is interrupted by a BaseException (like gevent's Timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted = False

    def apply_events(self, events: Sequence[JobEvent]) -> int:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return super().apply_events(events)


def test_an_interrupted_flush_gives_its_events_back() -> None:
    store = InterruptedOnce()
    (job_id,) = _jobs(store, 1)
    recorder = BatchRecorder(store, batch_size=200, interval=0.01)
    recorder.record(JobEvent(job_id, JobState.STARTED, attempt=1))
    with pytest.raises(KeyboardInterrupt):
        recorder.flush_job(job_id, 5)
    assert recorder.flush_job(job_id, 5)  # not stuck "in flight": written again
    assert store.get_job(job_id).state is JobState.STARTED  # type: ignore[union-attr]


def test_when_stored_calls_back_after_the_write_not_before() -> None:
    store = CountingStore()
    store.gate.clear()  # writes wait
    ids = _jobs(store, 1)
    recorder = BatchRecorder(store, batch_size=10, interval=0.01)
    called = threading.Event()
    recorder.record(JobEvent(ids[0], JobState.STARTED))
    recorder.record(JobEvent(ids[0], JobState.SUCCEEDED))
    recorder.when_stored(ids[0], called.set)
    assert store.writing.wait(2)
    assert not called.wait(0.2)  # the write is held: no callback yet
    store.gate.set()
    assert called.wait(2)
    assert store.get_job(ids[0]).state is JobState.SUCCEEDED  # type: ignore[union-attr]
    recorder.close()


def test_when_stored_calls_back_at_once_when_nothing_is_pending() -> None:
    store = CountingStore()
    recorder = BatchRecorder(store, batch_size=10, interval=0.01)
    calls: list[str] = []
    recorder.when_stored("job-x", lambda: calls.append("x"))
    assert calls == ["x"]
    recorder.close()


def test_when_stored_waits_out_a_store_outage() -> None:
    store = CountingStore(failures=2)
    ids = _jobs(store, 3)
    recorder = BatchRecorder(store, batch_size=10, interval=0.01)
    called: list[str] = []
    done = threading.Event()
    for job_id in ids:
        recorder.record(JobEvent(job_id, JobState.STARTED))
    recorder.when_stored(ids[-1], lambda: (called.append("stored"), done.set()))
    assert done.wait(5)
    assert called == ["stored"]  # once, after the retries succeeded
    assert all(store.get_job(i).state is JobState.STARTED for i in ids)  # type: ignore[union-attr]
    recorder.close()
