"""The worker hot path: one job read per run, no Celery result writes, waits for short tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.gate import GateAction
from conveyor.hooks.base import RunContext
from conveyor.hooks.flow import SLEEP_TOTAL, FlowHook
from conveyor.hooks.lookup import JobLookup
from conveyor.hooks.record import RecordHook
from conveyor.jobs import Job, JobState
from conveyor.policies.concurrency import Slot
from conveyor.policies.ratelimit import Rate
from conveyor.recorder import SyncRecorder
from conveyor.store.memory import MemoryStore
from conveyor.task import task
from conveyor.testing import InlineConveyor


class ReadCountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get_job(self, job_id: str) -> Job | None:
        self.reads.append(job_id)
        return super().get_job(job_id)


@task(name="hotpath.noop")
def noop(n: int) -> int:
    return n


@task(name="hotpath.limited", rate_limit="100/s")
def limited(n: int) -> int:
    return n


@pytest.fixture
def inline() -> Iterator[tuple[InlineConveyor, ReadCountingStore]]:
    store = ReadCountingStore()
    yield InlineConveyor(store=store), store


def test_a_run_reads_its_job_once_for_every_hook(
    inline: tuple[InlineConveyor, ReadCountingStore],
) -> None:
    conveyor, store = inline
    job = conveyor.submit("hotpath.noop", n=3)
    stored = conveyor.get(job.id)
    assert stored is not None and stored.state is JobState.SUCCEEDED and stored.result == 3
    # one read by the run (the gate; the callback hook reuses it), one by the inline
    # submitter returning the finished job, one by conveyor.get above
    assert store.reads.count(job.id) == 3


def test_conveyor_tasks_write_nothing_to_celerys_result_backend(
    inline: tuple[InlineConveyor, ReadCountingStore],
) -> None:
    conveyor, _ = inline
    assert conveyor.app.tasks["hotpath.noop"].ignore_result is True


def test_a_lookup_reads_at_most_once_and_shares_the_row() -> None:
    store = ReadCountingStore()
    store.create_job(Job(id="j1", task="hotpath.noop", queue="default", state=JobState.QUEUED))
    lookup = JobLookup(store, "j1")
    ctx = RunContext("j1", "hotpath.noop", "default", 1, "w", lookup=lookup)
    assert not lookup.loaded
    first, second = ctx.job(store), ctx.job(store)
    assert first is second and first is not None and first.id == "j1"
    assert store.reads == ["j1"]
    # without a lookup (e.g. a hard time limit in the main process) it reads the store
    assert RunContext("j1", "hotpath.noop", "default", 1, "w").job(store) is not None
    assert store.reads == ["j1", "j1"]


# -- short rate-limit waits are spent in the worker ---------------------------------


class ScriptedLimiter:
    """Answers ``take`` with the given waits in turn (0 = run)."""

    backend = "scripted"

    def __init__(self, waits: list[float]) -> None:
        self.waits = list(waits)
        self.takes = 0

    def take(self, bucket: str, rate: Rate, job_id: str) -> float:
        return self.take_at(bucket, rate, job_id)[0]

    def take_at(self, bucket: str, rate: Rate, job_id: str) -> tuple[float, float]:
        self.takes += 1
        return (self.waits.pop(0) if self.waits else 0.0), 1_700_000_000.0 + self.takes

    def acquire(self, key: str, job_id: str, limit: int) -> Slot:
        return Slot(True, 0.0)

    def renew(self, leases: Any) -> None:
        return None

    def release(self, key: str, job_id: str) -> None:
        return None


def _flow(waits: list[float], max_sleep: float) -> tuple[FlowHook, ScriptedLimiter, list[float]]:
    store = MemoryStore()
    store.create_job(Job(id="j1", task="hotpath.limited", queue="default", state=JobState.QUEUED))
    limiter = ScriptedLimiter(waits)
    slept: list[float] = []
    hook = FlowHook(store, limiter, 30.0, max_sleep=max_sleep, sleep=slept.append)
    return hook, limiter, slept


def _ctx() -> RunContext:
    return RunContext("j1", "hotpath.limited", "default", 1, "w")


def test_a_token_due_soon_is_waited_for_in_place() -> None:
    hook, limiter, slept = _flow([0.2, 0.05, 0.0], max_sleep=1.0)
    assert hook.before_run(_ctx()).runs
    # the reserved token, then a full guard window (less the time spent recording the wait)
    assert len(slept) == 2 and 0 < slept[0] <= 0.2 and 0 < slept[1] <= 0.05
    assert limiter.takes == 3
    job = hook.store.get_job("j1")  # shown as waiting for the limit meanwhile, no attempt
    assert job is not None and (job.state, job.reason, job.attempts) == (
        JobState.RETRYING,
        "rate_limited",
        0,
    )


def test_a_token_due_later_defers_the_job_through_the_broker() -> None:
    hook, limiter, slept = _flow([4.0], max_sleep=1.0)
    gate = hook.before_run(_ctx())
    assert (gate.action, gate.reason, gate.countdown) == (GateAction.DEFER, "rate_limited", 4.0)
    assert slept == [] and limiter.takes == 1
    job = hook.store.get_job("j1")
    assert job is not None and (job.state, job.reason) == (JobState.RETRYING, "rate_limited")


def test_waiting_in_place_is_bounded() -> None:
    hook, _, slept = _flow([0.9] * 20, max_sleep=1.0)
    gate = hook.before_run(_ctx())
    assert gate.action is GateAction.DEFER and gate.countdown == 0.9
    assert 0 < sum(slept) <= SLEEP_TOTAL


def test_without_max_sleep_every_wait_goes_through_the_broker() -> None:
    hook, _, slept = _flow([0.01], max_sleep=0.0)
    assert hook.before_run(_ctx()).action is GateAction.DEFER
    assert slept == []


def test_the_recorded_start_is_the_limiters_decision_time() -> None:
    hook, _, _ = _flow([0.2, 0.0], max_sleep=1.0)
    lookup = JobLookup(hook.store, "j1")
    ctx = RunContext("j1", "hotpath.limited", "default", 1, "w", lookup=lookup)
    assert hook.before_run(ctx).runs
    decided = datetime.fromtimestamp(1_700_000_002, UTC)  # the second take let it through
    assert lookup.started_at == decided
    RecordHook(SyncRecorder(hook.store)).on_start(ctx)
    job = hook.store.get_job("j1")
    assert job is not None and job.state is JobState.STARTED and job.started_at == decided
