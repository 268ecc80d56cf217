"""Cleanup after one year, a real materialized view, ANALYZE; and SQLite's stand-ins."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from conveyor.settings import load_settings
from examples.mluvme.db import ACTIVITY_VIEW, create_tables, dispose_engines, session
from examples.mluvme.models import (
    DailyStats,
    Message,
    PlatformMetrics,
    StreakMilestoneAward,
    User,
    WeeklyReport,
)
from tests.examples.mluvme.conftest import Bot
from tests.support.catalog import Configure

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 16, 2, 0, tzinfo=UTC)  # the Monday 02:00 UTC run


def _metrics(at: datetime) -> PlatformMetrics:
    return PlatformMetrics(
        captured_at=at,
        total_users=1,
        active_users_day=0,
        active_users_week=0,
        messages_day=0,
        messages_total=0,
    )


def test_cleanup_deletes_data_older_than_one_year(bot: Bot) -> None:
    user = bot.user(streak_days=7)
    old, recent = NOW - timedelta(days=366), NOW - timedelta(days=364)
    bot.message(user, old, "Starý")
    bot.message(user, recent, "Nový")
    with session() as db:
        for day in (old.date(), recent.date()):
            db.add(DailyStats(user_id=user, day=day, messages=1, words=1, computed_at=NOW))
            db.add(
                WeeklyReport(
                    user_id=user,
                    week_start=day - timedelta(days=6),
                    week_end=day,
                    data={},
                    generated_at=NOW,
                )
            )
        db.add_all([_metrics(old), _metrics(recent)])
        db.add(StreakMilestoneAward(user_id=user, milestone=7, stars=50, awarded_at=old))

    job = bot.run("mluvme.cleanup_old_data", now=NOW.isoformat())

    assert job.result is not None
    assert job.result["deleted"] == {
        "messages": 1,
        "daily_stats": 1,
        "weekly_reports": 1,
        "platform_metrics": 1,
    }
    with session() as db:
        assert list(db.scalars(select(Message.text))) == ["Nový"]
        assert list(db.scalars(select(DailyStats.day))) == [recent.date()]
        assert db.scalar(select(func.count(WeeklyReport.id))) == 1
        assert db.scalar(select(func.count(PlatformMetrics.id))) == 1
        # people and the awards that keep bonuses idempotent are never "old data"
        assert db.scalar(select(func.count(User.id))) == 1
        assert db.scalar(select(func.count(StreakMilestoneAward.id))) == 1


def test_refresh_materialized_views_refreshes_a_real_postgresql_view(bot: Bot) -> None:
    with session() as db:
        kind = db.scalar(
            text("SELECT count(*) FROM pg_matviews WHERE matviewname = :name"),
            {"name": ACTIVITY_VIEW},
        )
        assert kind == 1
    first, second = bot.user(), bot.user()
    bot.message(first, datetime(2026, 3, 9, 10, tzinfo=UTC), "Ahoj světe")
    bot.message(second, datetime(2026, 3, 9, 11, tzinfo=UTC), "Dobrý den")
    bot.message(first, datetime(2026, 3, 10, 9, tzinfo=UTC), "Na shledanou")

    job = bot.run("mluvme.refresh_materialized_views")

    assert job.result == {
        "refreshed": [ACTIVITY_VIEW],
        "how": "materialized view",
        "database": "postgresql",
    }
    with session() as db:
        rows = db.execute(
            text(f"SELECT day, messages, active_users, words FROM {ACTIVITY_VIEW} ORDER BY day")
        ).all()
    assert [tuple(r) for r in rows] == [(date(2026, 3, 9), 2, 2, 4), (date(2026, 3, 10), 1, 1, 2)]


def test_optimize_database_analyzes_the_tables(bot: Bot) -> None:
    user = bot.user()
    for n in range(3):
        bot.message(user, NOW - timedelta(hours=n))

    job = bot.run("mluvme.optimize_database")

    assert job.result is not None
    assert job.result["database"] == "postgresql"
    assert "mluvme_messages" in job.result["analyzed"]
    with session() as db:  # ANALYZE writes the row estimate into pg_class
        estimate = db.scalar(
            text("SELECT reltuples FROM pg_class WHERE relname = 'mluvme_messages'")
        )
    assert estimate == 3


def test_on_sqlite_the_view_is_a_rebuilt_table(
    bot: Bot, configure: Configure, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'mluvme.db'}"
    create_tables(load_settings(database_url=url))
    configure(database_url=url)
    try:
        user = bot.user()
        bot.message(user, datetime(2026, 3, 9, 10, tzinfo=UTC), "Ahoj světe")
        refreshed = bot.run("mluvme.refresh_materialized_views")
        optimized = bot.run("mluvme.optimize_database")
        with session() as db:
            rows = db.execute(text(f"SELECT day, messages FROM {ACTIVITY_VIEW}")).all()
    finally:
        dispose_engines()
    assert refreshed.result == {
        "refreshed": [ACTIVITY_VIEW],
        "how": "table rebuild",
        "database": "sqlite",
    }
    assert optimized.result is not None and optimized.result["database"] == "sqlite"
    assert [tuple(r) for r in rows] == [("2026-03-09", 1)]
