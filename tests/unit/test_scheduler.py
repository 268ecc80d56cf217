"""The scheduler's decisions, one pass at a time, with a fake clock and the in-memory store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.schedules import crontab
from celery.schedules import schedule as celery_interval
from pydantic import ValidationError
from structlog.testing import capture_logs

from conveyor.engine import create_app
from conveyor.jobs import Job, JobState
from conveyor.lease import StoreLease
from conveyor.schedule_manager import Declaration, ScheduleManager, declarations
from conveyor.scheduler import LEASE_NAME, ConveyorScheduler, ScheduleRunner
from conveyor.schedules import At, Cron, Every, Schedule, ScheduleSpec, timing_fields
from conveyor.settings import Settings, load_settings
from conveyor.store.base import JobFilter, JobStore
from conveyor.store.memory import MemoryStore
from conveyor.store.sql import SqlStore
from conveyor.submit import Submitter
from conveyor.task import TaskRegistry, TaskSpec, task
from conveyor.testing import inline_settings

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@task(name="sched.ping")
def ping() -> str:
    return "pong"


@task(name="sched.add")
def add(x: int, y: int = 1) -> int:
    return x + y


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> datetime:
        self.now = T0 + timedelta(seconds=seconds)
        return self.now


class FakeLease:
    """A lease whose answer the test decides."""

    def __init__(self, holder: str, leading: bool = True) -> None:
        self.name, self.holder, self.ttl = LEASE_NAME, holder, 15.0
        self.leading = leading
        self.released = False

    def acquire(self) -> bool:
        return self.leading

    def release(self) -> None:
        self.released = True

    def current_holder(self) -> str | None:
        return self.holder if self.leading else None


class FlakySubmitter(Submitter):
    """A submitter whose broker refuses the first ``failures`` messages."""

    failures = 0

    def dispatch(self, job: Job, *args: Any, **kwargs: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("broker down")
        super().dispatch(job, *args, **kwargs)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return inline_settings(
        data_dir=tmp_path / "var",
        scheduler_lease_ttl=15,
    )


@pytest.fixture
def app(settings: Settings) -> Celery:
    return create_app(settings)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def submitter(settings: Settings, store: MemoryStore, app: Celery) -> FlakySubmitter:
    return FlakySubmitter(settings, store, app)


@pytest.fixture
def manager(store: MemoryStore, submitter: Submitter, clock: Clock) -> ScheduleManager:
    return ScheduleManager(store, submitter, clock)


def runner_for(
    settings: Settings,
    store: JobStore,
    submitter: Submitter,
    clock: Clock,
    holder: str = "h1",
    **kwargs: Any,
) -> ScheduleRunner:
    lease = kwargs.pop("lease", FakeLease(holder))
    return ScheduleRunner(settings, store, submitter, lease, clock=clock, **kwargs)


@pytest.fixture
def runner(
    settings: Settings, store: MemoryStore, submitter: Submitter, clock: Clock
) -> ScheduleRunner:
    return runner_for(settings, store, submitter, clock)


def spec(**fields: Any) -> ScheduleSpec:
    return ScheduleSpec.model_validate({"task": "sched.ping", **fields})


def jobs(store: JobStore) -> list[Job]:
    return store.list_jobs(JobFilter(), 1000).items


def due_times(store: JobStore, name: str) -> list[float]:
    return [(r.due_at - T0).total_seconds() for r in store.list_schedule_runs(name)]


# -- running due schedules ----------------------------------------------------------------
def test_interval_runs_once_per_period(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("every10", spec(task="sched.add", kwargs={"x": 2}, interval=10))
    for second in (0, 5, 9.9, 10, 10.5, 12, 19, 20, 20.2, 30):
        clock.at(second)
        runner.tick()
    assert due_times(store, "every10") == [10, 20, 30]
    found = jobs(store)
    assert len(found) == 3
    assert [(j.task, j.state, dict(j.kwargs)) for j in found] == [
        ("sched.add", JobState.QUEUED, {"x": 2})
    ] * 3
    schedule = store.get_schedule("every10")
    assert schedule is not None
    assert schedule.next_run_at == T0 + timedelta(seconds=40)
    assert schedule.last_run_at == T0 + timedelta(seconds=30)
    assert schedule.last_job_id in {j.id for j in found}
    assert {r.job_id for r in store.list_schedule_runs("every10")} == {j.id for j in found}


def test_queue_and_priority_options_reach_the_job(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("opts", spec(interval=5, options={"queue": "maintenance", "priority": 7}))
    clock.at(5)
    runner.tick()
    (job,) = jobs(store)
    assert (job.queue, job.priority) == ("maintenance", 7)


def test_cron_schedule_in_a_time_zone(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    created = manager.create("prague", spec(cron="30 13 * * *", timezone="Europe/Prague"))
    assert created.next_run_at == T0 + timedelta(minutes=30)  # 13:30 CET = 12:30 UTC
    clock.at(30 * 60)
    runner.tick()
    assert due_times(store, "prague") == [30 * 60]
    schedule = store.get_schedule("prague")
    assert schedule is not None
    assert schedule.next_run_at == T0 + timedelta(days=1, minutes=30)


def test_not_leader_submits_nothing(
    settings: Settings,
    store: MemoryStore,
    submitter: Submitter,
    clock: Clock,
    manager: ScheduleManager,
) -> None:
    manager.create("every1", spec(interval=1))
    follower = runner_for(settings, store, submitter, clock, lease=FakeLease("f", leading=False))
    for second in range(5):
        clock.at(second)
        follower.tick()
    assert jobs(store) == []
    assert not follower.is_leader


def test_two_leaders_at_once_still_give_one_job_per_period(
    settings: Settings,
    store: MemoryStore,
    submitter: Submitter,
    clock: Clock,
    manager: ScheduleManager,
) -> None:
    manager.create("every1", spec(interval=1))
    first = runner_for(settings, store, submitter, clock, holder="a")
    second = runner_for(settings, store, submitter, clock, holder="b")
    with capture_logs() as logs:
        for tick in range(1, 6):
            clock.at(tick)
            first.tick()
            second.tick()
            # and the other way round, each seeing the schedule as it was before the run
            stale = store.get_schedule("every1")
            clock.at(tick + 0.5)
            assert stale is not None
            second.run_if_due(stale.evolve(next_run_at=T0 + timedelta(seconds=tick)), clock.now)
    assert due_times(store, "every1") == [1, 2, 3, 4, 5]
    assert len(jobs(store)) == 5
    assert any(e["event"] == "schedule_run_already_claimed" for e in logs)


def test_only_one_of_two_runners_takes_the_store_lease(
    settings: Settings,
    store: MemoryStore,
    submitter: Submitter,
    clock: Clock,
    manager: ScheduleManager,
) -> None:
    manager.create("every1", spec(interval=1))
    leases = [StoreLease(store, LEASE_NAME, holder, 15) for holder in ("a", "b")]
    runners = [runner_for(settings, store, submitter, clock, lease=lease) for lease in leases]
    with capture_logs() as logs:
        for second in (1, 2, 3):
            clock.at(second)
            for r in runners:
                r.tick()
    assert [r.is_leader for r in runners] == [True, False]
    assert len(jobs(store)) == 3
    assert {r.claimed_by for r in store.list_schedule_runs("every1")} == {"a"}
    elected = [e for e in logs if e["event"] == "scheduler_leader_elected"]
    assert [e["holder"] for e in elected] == ["a"]
    assert [e["holder"] for e in logs if e["event"] == "scheduler_standby"] == ["b"]
    runners[0].close()  # a graceful stop hands over at once
    runners[1].tick()
    assert runners[1].is_leader


def test_late_within_the_lease_ttl_still_runs(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("every10", spec(interval=10))
    clock.at(10 + 14)  # the old leader died; the new one takes over 14 s late
    runner.tick()
    assert due_times(store, "every10") == [10]
    schedule = store.get_schedule("every10")
    assert schedule is not None and schedule.next_run_at == T0 + timedelta(seconds=30)


def test_missed_runs_are_skipped_by_default(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("every10", spec(interval=10))
    clock.at(3600 + 5)  # no scheduler ran for an hour
    with capture_logs() as logs:
        runner.tick()
        runner.tick()
    assert jobs(store) == []
    assert [e["event"] for e in logs if e["event"].startswith("schedule_run")] == [
        "schedule_run_missed"
    ]
    schedule = store.get_schedule("every10")
    assert schedule is not None and schedule.next_run_at == T0 + timedelta(seconds=3610)
    clock.at(3610)
    runner.tick()
    assert due_times(store, "every10") == [3610]


def test_run_once_policy_runs_a_missed_run_exactly_once(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("daily", spec(cron="5 0 * * *", missed="run_once"))
    clock.now = T0 + timedelta(days=3, hours=1)  # down for three days: three periods missed
    for _ in range(3):
        runner.tick()
    assert len(jobs(store)) == 1
    assert due_times(store, "daily") == [(timedelta(hours=12, minutes=5)).total_seconds()]
    schedule = store.get_schedule("daily")
    assert schedule is not None
    assert schedule.next_run_at == datetime(2024, 3, 5, 0, 5, tzinfo=UTC)


def test_one_off_runs_once(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("once", spec(at=(T0 + timedelta(seconds=30)).isoformat()))
    for second in (0, 29, 30, 31, 3600):
        clock.at(second)
        runner.tick()
    assert due_times(store, "once") == [30]
    schedule = store.get_schedule("once")
    assert schedule is not None and schedule.next_run_at is None


def test_paused_schedule_does_not_run_and_resumes_without_catch_up(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("every10", spec(interval=10))
    manager.pause("every10")
    for second in (10, 20, 30):
        clock.at(second)
        runner.tick()
    assert jobs(store) == []
    clock.at(35)
    resumed = manager.resume("every10")
    assert resumed.enabled and resumed.next_run_at == T0 + timedelta(seconds=45)
    clock.at(45)
    runner.tick()
    assert due_times(store, "every10") == [45]


def test_live_edit_changes_the_cadence(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("pulse", spec(interval=10))
    for second in (10, 20):
        clock.at(second)
        runner.tick()
    clock.at(21)
    edited = manager.update("pulse", {"interval": 3})
    assert edited.version == 2
    assert edited.next_run_at == T0 + timedelta(seconds=23)  # last run + new interval
    for second in range(22, 33):
        clock.at(second)
        runner.tick()
    assert due_times(store, "pulse") == [10, 20, 23, 26, 29, 32]


def test_an_edit_racing_a_run_wins(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("pulse", spec(interval=10))
    seen = store.get_schedule("pulse")
    assert seen is not None
    clock.at(10)
    edited = manager.update("pulse", {"cron": "0 * * * *"})  # lands while the pass runs
    runner.run_if_due(seen, clock.now)
    assert len(jobs(store)) == 1
    after = store.get_schedule("pulse")
    assert after is not None
    assert after.next_run_at == edited.next_run_at == datetime(2024, 3, 1, 13, tzinfo=UTC)


def test_broker_down_leaves_the_period_to_retry(
    runner: ScheduleRunner,
    manager: ScheduleManager,
    store: MemoryStore,
    clock: Clock,
    submitter: FlakySubmitter,
) -> None:
    manager.create("every10", spec(interval=10))
    submitter.failures = 2
    with capture_logs() as logs:
        sleeps = []
        for second in (10, 10.5, 11):
            clock.at(second)
            sleeps.append(runner.tick())
    assert sleeps == [1.0, 1.0, 1.0]  # no busy loop while the broker is down
    assert [e["event"] for e in logs].count("schedule_run_deferred") == 2
    assert due_times(store, "every10") == [10]
    assert len(jobs(store)) == 1


def test_refused_submit_is_logged_and_the_schedule_moves_on(
    runner: ScheduleRunner, store: MemoryStore, clock: Clock
) -> None:
    broken = Schedule.from_spec("broken", spec(task="no.such.task", interval=10), "api", T0)
    store.add_schedule(broken)
    clock.at(10)
    with capture_logs() as logs:
        runner.tick()
    assert [e["event"] for e in logs if e["event"].startswith("schedule_")] == [
        "schedule_run_refused"
    ]
    schedule = store.get_schedule("broken")
    assert schedule is not None and schedule.next_run_at == T0 + timedelta(seconds=20)


def test_tick_callbacks_run_on_the_leader_only(
    settings: Settings, store: MemoryStore, submitter: Submitter, clock: Clock
) -> None:
    calls: list[tuple[object, object, datetime]] = []

    def release_due(
        store: JobStore, submitter: Submitter, now: datetime | None = None, limit: int = 500
    ) -> int:
        assert now is not None
        calls.append((store, submitter, now))
        return 0

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    leader = runner_for(settings, store, submitter, clock, callbacks=[broken, release_due])
    follower = runner_for(
        settings, store, submitter, clock, lease=FakeLease("f", False), callbacks=[release_due]
    )
    clock.at(1)
    with capture_logs() as logs:
        leader.tick()
        follower.tick()
    assert calls == [(store, submitter, T0 + timedelta(seconds=1))]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["scheduler_tick_failed"]


def test_sleep_is_at_most_one_tick_and_short_when_a_run_is_near(
    runner: ScheduleRunner, manager: ScheduleManager, clock: Clock, settings: Settings
) -> None:
    assert runner.tick() == settings.scheduler_tick
    manager.create("every10", spec(interval=10))
    clock.at(9.75)
    assert runner.tick() == pytest.approx(0.25)
    clock.at(5)
    assert runner.tick() == settings.scheduler_tick


# -- declarations ----------------------------------------------------------------------
def test_timing_fields_accept_celery_and_conveyor_forms() -> None:
    assert timing_fields(crontab(minute=5, hour=0)) == {"cron": "5 0 * * *"}
    assert timing_fields(crontab(minute="*/30")) == {"cron": "*/30 * * * *"}
    assert timing_fields(crontab(hour=2, minute=0, day_of_week=1)) == {"cron": "0 2 * * 1"}
    assert timing_fields(celery_interval(timedelta(hours=1))) == {"interval": 3600.0}
    assert timing_fields(timedelta(days=1)) == {"interval": 86400.0}
    assert timing_fields(10.0) == {"interval": 10.0}
    assert timing_fields(Cron("30 2 * * *", "Europe/Prague")) == {
        "cron": "30 2 * * *",
        "timezone": "Europe/Prague",
        "missed": "skip",
    }
    assert timing_fields(Every(300, missed="run_once")) == {
        "interval": 300.0,
        "missed": "run_once",
    }
    when = datetime(2030, 1, 1, tzinfo=UTC)
    assert timing_fields(At(when)) == {"at": when, "missed": "skip"}
    with pytest.raises(TypeError, match="unsupported schedule"):
        timing_fields("daily")


def test_task_decorator_checks_the_schedule() -> None:
    with pytest.raises(ValidationError, match="minute: 99 is out of range"):

        @task(name="sched.bad_cron", schedule=Cron("99 * * * *"))
        def bad_cron() -> None: ...

    with pytest.raises(TypeError):

        @task(name="sched.bad_kind", schedule="hourly")
        def bad_kind() -> None: ...


def declared_registry(**schedules: object) -> TaskRegistry:
    registry = TaskRegistry()
    registry.add(ping.spec)
    registry.add(add.spec)
    for name, timing in schedules.items():
        registry.add(TaskSpec(name=f"sched.{name}", fn=periodic, schedule=timing))
    return registry


def periodic() -> None:
    """A task that runs on a schedule."""


def test_declarations_from_code_and_configuration(settings: Settings) -> None:
    registry = declared_registry(nightly=crontab(hour=2, minute=0), hourly=timedelta(hours=1))
    configured = settings.model_copy(
        update={
            "schedules": {
                "sched.hourly": spec(interval=60),
                "digest": spec(cron="0 8 * * *", timezone="Europe/Prague"),
            }
        }
    )
    found = {d.name: d for d in declarations(registry, configured)}
    assert sorted(found) == ["digest", "sched.hourly", "sched.nightly"]
    assert found["sched.nightly"].origin == "code"
    assert found["sched.nightly"].spec.cron == "0 2 * * *"
    assert found["sched.hourly"].origin == "config"  # configuration overrides code
    assert found["sched.hourly"].spec.interval == 60
    assert found["digest"].spec.timezone == "Europe/Prague"


def test_sync_adds_updates_keeps_api_schedules_and_never_duplicates(
    manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("mine", spec(interval=30))  # through the API
    declared = [
        Declaration("nightly", spec(cron="0 2 * * *"), "code"),
        Declaration("hourly", spec(interval=3600), "config"),
        Declaration("mine", spec(interval=5), "config"),
    ]
    with capture_logs() as logs:
        manager.sync(declared)
        manager.sync(declared)
    assert [s.name for s in store.list_schedules()] == ["hourly", "mine", "nightly"]
    assert [s.version for s in store.list_schedules()] == [1, 1, 1]
    mine = store.get_schedule("mine")
    assert mine is not None and (mine.interval, mine.origin) == (30, "api")
    assert [e["event"] for e in logs].count("schedule_declaration_ignored") == 2
    assert [e["event"] for e in logs].count("schedule_created") == 2

    manager.pause("hourly")
    clock.at(100)
    manager.sync(
        [
            Declaration("nightly", spec(cron="0 3 * * *", kwargs={}), "code"),
            Declaration("hourly", spec(interval=1800), "config"),
        ]
    )
    nightly, hourly = store.get_schedule("nightly"), store.get_schedule("hourly")
    assert nightly is not None and nightly.cron == "0 3 * * *" and nightly.version == 2
    assert hourly is not None and hourly.interval == 1800
    assert not hourly.enabled  # paused through the API: stays paused
    assert store.get_schedule("mine") is not None  # API schedules are never removed

    manager.sync([Declaration("hourly", spec(interval=1800), "config")])
    assert store.get_schedule("nightly") is None  # no longer declared


def test_sync_logs_an_invalid_declaration_and_goes_on(
    manager: ScheduleManager, store: MemoryStore
) -> None:
    with capture_logs() as logs:
        manager.sync(
            [
                Declaration("bad", spec(task="sched.add", interval=5), "code"),  # x missing
                Declaration("good", spec(interval=5), "code"),
            ]
        )
    assert [s.name for s in store.list_schedules()] == ["good"]
    (error,) = [e for e in logs if e["event"] == "schedule_invalid"]
    assert error["schedule"] == "bad"


# -- the Celery Beat scheduler class ------------------------------------------------------
@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Iterator[Settings]:
    settings = load_settings(
        data_dir=tmp_path / "var",
        broker_url="memory://",
        database_url=f"sqlite:///{tmp_path}/conveyor.db",
        result_backend="cache+memory://",
        schedules={"cfg.every": {"task": "sched.ping", "interval": 1}},
    )
    store = SqlStore(settings.effective_database_url)
    store.migrate()
    store.close()
    yield settings


def test_beat_scheduler_syncs_ticks_and_releases_its_lease(sqlite_settings: Settings) -> None:
    app = create_app(sqlite_settings)
    scheduler = ConveyorScheduler(app=app)
    try:
        assert scheduler.schedule == {}
        assert scheduler.max_interval == sqlite_settings.scheduler_tick
        assert 0 < scheduler.tick() <= 1
        runner = scheduler.runner
        assert runner is not None and runner.is_leader
        store = SqlStore(sqlite_settings.effective_database_url)
        stored = store.get_schedule("cfg.every")
        assert stored is not None and stored.origin == "config"
        assert store.lease_holder(LEASE_NAME, datetime.now(UTC)) == runner.holder
    finally:
        scheduler.close()
    assert store.lease_holder(LEASE_NAME, datetime.now(UTC)) is None
    store.close()


def test_resume_after_a_long_pause_does_not_run_at_once(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("every10", spec(interval=10))
    clock.at(10)
    runner.tick()
    manager.pause("every10")
    clock.at(100)
    assert manager.resume("every10").next_run_at == T0 + timedelta(seconds=110)
    runner.tick()
    assert due_times(store, "every10") == [10]


def test_old_claims_are_pruned_now_and_then(
    runner: ScheduleRunner, manager: ScheduleManager, store: MemoryStore, clock: Clock
) -> None:
    manager.create("every1h", spec(interval=3600))
    clock.at(3600)
    runner.tick()
    assert due_times(store, "every1h") == [3600]
    clock.at(3600 + 86400 + 1)  # a day later (the missed runs are skipped)
    with capture_logs() as logs:
        runner.tick()
    assert due_times(store, "every1h") == []
    assert [e["count"] for e in logs if e["event"] == "schedule_runs_pruned"] == [1]
