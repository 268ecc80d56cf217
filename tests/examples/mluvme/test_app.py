"""The example as seed 000 describes it: task names and policies, beat table, configuration,
texts; and its synthetic data (no services needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

import examples.mluvme.tasks  # noqa: F401  (registers the mluvme.* tasks)
from conveyor.example import load_example
from conveyor.schedule_manager import declarations
from conveyor.settings import load_settings
from conveyor.task import registry
from examples.mluvme.app import EXAMPLE
from examples.mluvme.messages import plural, render
from examples.mluvme.models import Base, Message, User
from examples.mluvme.synthetic import generate

#: seed 000, "Scheduled Tasks (Celery Beat)", row by row
SEED_BEAT_TABLE = {
    "mluvme.check_and_reset_streaks": "5 0 * * *",  # Daily 00:05 UTC
    "mluvme.send_daily_reminders": "0 18 * * *",  # Daily 18:00 UTC
    "mluvme.aggregate_platform_metrics": "*/30 * * * *",  # Every 30 min
    "mluvme.cleanup_old_data": "0 2 * * 1",  # Monday 02:00 UTC
    "mluvme.refresh_materialized_views": "0 * * * *",  # Hourly
}

#: issue 10's cadences the seed's beat table leaves out
ISSUE_CADENCES = {
    "mluvme.calculate_all_users_daily_stats": "5 0 * * *",  # daily 00:05 UTC
    "mluvme.send_weekly_reports": "0 9 * * 1",  # Mondays
    "mluvme.optimize_database": "0 3 * * 0",  # weekly
}

#: issue 10's mluvme tasks: queue, retries (None: no retry policy), rate limit
SEED_TASKS = {
    "mluvme.calculate_daily_statistics": ("analytics", 3, None),
    "mluvme.aggregate_platform_metrics": ("analytics", None, "10/m"),
    "mluvme.generate_weekly_report": ("analytics", 3, None),
    "mluvme.calculate_all_users_daily_stats": ("analytics", None, None),
    "mluvme.send_streak_reminder": ("notifications", 5, None),
    "mluvme.send_daily_reminders": ("notifications", None, None),
    "mluvme.send_daily_challenge_notification": ("notifications", None, None),
    "mluvme.send_weekly_report_notification": ("notifications", 3, None),
    "mluvme.check_and_reset_streaks": ("default", 3, None),
    "mluvme.award_streak_milestone_bonus": ("default", 3, None),
    "mluvme.cleanup_old_data": ("maintenance", 3, None),
    "mluvme.refresh_materialized_views": ("maintenance", 3, None),
    "mluvme.optimize_database": ("maintenance", None, None),
}


def test_code_schedules_are_the_seeds_beat_table_plus_the_issues_cadences() -> None:
    declared = {
        d.name: (d.spec.task, d.spec.cron, d.spec.timezone)
        for d in declarations(registry, load_settings())
        if d.name.startswith("mluvme.")
    }
    expected = {**SEED_BEAT_TABLE, **ISSUE_CADENCES}
    assert declared == {name: (name, cron, "UTC") for name, cron in expected.items()}


def test_every_task_of_the_issue_is_registered_with_its_policies() -> None:
    for name, (queue, retries, rate) in SEED_TASKS.items():
        spec = registry.get(name)
        assert spec.queue == queue, name
        assert (spec.retry.max_retries if spec.retry else None) == retries, name
        assert (str(spec.rate_limit.rate) if spec.rate_limit else None) == rate, name
    limit = registry.get("mluvme.aggregate_platform_metrics").rate_limit
    assert limit is not None and (limit.parsed.count, limit.parsed.period) == (10, 60)


def test_environment_carries_the_seeds_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in EXAMPLE.environment.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.queues == ["default", "analytics", "notifications", "maintenance"]
    assert (settings.task_time_limit, settings.task_soft_time_limit) == (300, 240)
    assert settings.worker_prefetch_multiplier == 4
    assert settings.worker_max_tasks_per_child == 1000
    assert settings.result_expires == 3600
    # the synthetic demo traffic is configuration, so the code schedules stay the seed's
    demo = settings.schedules["mluvme.demo_activity"]
    assert (demo.task, demo.interval) == ("mluvme.simulate_activity", 15)
    queues = {registry.get(name).queue for name in SEED_TASKS} | {"notifications"}
    assert queues <= set(settings.queues)  # telegram.send_message uses notifications


def test_conveyor_loads_the_example() -> None:
    example = load_example("mluvme")
    assert example is EXAMPLE
    assert example.imports == ("examples.mluvme.tasks",)


def test_plural_forms_of_both_locales() -> None:
    assert [plural("ru", "day", n) for n in (1, 2, 5, 11, 21, 22, 25, 111)] == [
        "день",
        "дня",
        "дней",
        "дней",
        "день",
        "дня",
        "дней",
        "дней",
    ]
    assert [plural("uk", "day", n) for n in (1, 3, 7, 14, 31)] == [
        "день",
        "дні",
        "днів",
        "днів",
        "день",
    ]
    assert render("uk", "milestone", days=30, days_word="днів", stars=200) == (
        "🏆 30 днів поспіль! Бонус: +200 ⭐"
    )
    with pytest.raises(ValueError, match="unsupported locale 'en'"):
        render("en", "milestone", days=7, days_word="days", stars=50)


def _snapshot(tmp_path: Path, name: str) -> list[tuple[object, ...]]:
    engine = create_engine(f"sqlite:///{tmp_path / name}")
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as db, db.begin():
            generated = generate(
                db, users=6, days=10, seed=7, now=datetime(2026, 3, 10, tzinfo=UTC)
            )
            users = db.execute(
                select(User.username, User.timezone, User.locale, User.streak_days, User.synthetic)
            ).all()
            messages = db.execute(
                select(Message.user_id, Message.text, Message.correctness, Message.synthetic)
            ).all()
            assert db.scalar(select(func.count(Message.id))) == generated.messages
        return [tuple(u) for u in users] + [tuple(m) for m in messages]
    finally:
        engine.dispose()


def test_synthetic_data_is_marked_and_deterministic(tmp_path: Path) -> None:
    first = _snapshot(tmp_path, "a.db")
    assert first == _snapshot(tmp_path, "b.db")
    users = [row for row in first if isinstance(row[0], str)]
    assert [row[0] for row in users] == [f"synthetic-user-{n}" for n in range(1, 7)]
    assert len({row[1] for row in users}) == 6  # six time zones
    assert {row[2] for row in users} == {"ru", "uk"}
    assert all(row[-1] is True for row in first)  # every row flagged synthetic
