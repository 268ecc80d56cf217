"""Daily statistics and weekly reports (cached in the example's tables), platform metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from conveyor.jobs import JobState
from conveyor.settings import get_settings
from conveyor.store.sql import SqlStore
from conveyor.testing import InlineConveyor, inline_settings
from examples.mluvme.app import prepare
from examples.mluvme.db import session
from examples.mluvme.models import DailyStats, Message, PlatformMetrics, User
from tests.examples.mluvme.conftest import Bot
from tests.support.catalog import Configure

pytestmark = pytest.mark.integration


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_daily_statistics_count_the_users_own_day_and_are_cached(bot: Bot) -> None:
    user = bot.user(timezone="Europe/Kyiv")  # UTC+2 in March
    bot.message(user, _utc(2026, 3, 8, 22, 0), "Dobrý den", 100)  # 9 March 00:00 in Kyiv
    bot.message(user, _utc(2026, 3, 9, 12, 0), "Zítra pojedu vlakem do Brna", 70)
    bot.message(user, _utc(2026, 3, 9, 21, 59), "Promiňte, nerozumím", 40)  # 23:59 in Kyiv
    bot.message(user, _utc(2026, 3, 9, 22, 0), "Učím se česky", 90)  # 10 March in Kyiv
    during = _utc(2026, 3, 9, 18, 0)

    first = bot.run(
        "mluvme.calculate_daily_statistics", user_id=user, day="2026-03-09", now=during.isoformat()
    )
    assert first.result is not None
    assert first.result["messages_count"] == 3
    assert first.result["words_count"] == 2 + 5 + 2
    assert first.result["avg_correctness"] == 70.0
    assert first.result["cached"] is False

    # within the hour the running day's row is reused, even though a message came in
    bot.message(user, _utc(2026, 3, 9, 18, 10), "Kde je zastávka?", 100)
    again = bot.run(
        "mluvme.calculate_daily_statistics",
        user_id=user,
        day="2026-03-09",
        now=(during + timedelta(minutes=30)).isoformat(),
    )
    assert again.result is not None
    assert again.result["cached"] is True
    assert again.result["messages_count"] == 3

    # after the hour (or with refresh) it is recomputed; a finished day then stays cached
    later = bot.run(
        "mluvme.calculate_daily_statistics",
        user_id=user,
        day="2026-03-09",
        now=_utc(2026, 3, 10, 9, 0).isoformat(),
    )
    assert later.result is not None
    assert (later.result["cached"], later.result["messages_count"]) == (False, 4)
    final = bot.run(
        "mluvme.calculate_daily_statistics",
        user_id=user,
        day="2026-03-09",
        now=_utc(2026, 5, 1).isoformat(),
    )
    assert final.result is not None and final.result["cached"] is True
    with session() as db:
        assert db.scalar(select(func.count(DailyStats.id))) == 1


def test_daily_statistics_of_an_unknown_user_fail_without_retrying(bot: Bot) -> None:
    job = bot.inline.submit("mluvme.calculate_daily_statistics", user_id=999)
    assert job.state is JobState.DEAD
    assert job.attempts == 1
    assert "does not exist" in (job.error or "")


@pytest.mark.parametrize(
    ("task", "attempts"),
    [("mluvme.calculate_daily_statistics", 4), ("mluvme.send_streak_reminder", 6)],
)
def test_database_outages_are_retried_as_the_seed_says(
    bot: Bot, pg_url: str, configure: Configure, task: str, attempts: int
) -> None:
    configure(database_url=pg_url.rsplit("/", 1)[0] + "/mluvme_no_such_database")
    job = bot.inline.submit(task, user_id=1)
    assert job.state is JobState.DEAD
    assert job.attempts == attempts  # 3 retries for statistics, 5 for reminders


def test_weekly_report_covers_the_last_seven_days_and_is_cached_a_week(bot: Bot) -> None:
    user = bot.user(timezone="Europe/Prague", streak_days=3)
    bot.message(user, _utc(2026, 3, 8, 12), "Mimo týden", 10)  # the Sunday before: left out
    for day, words, score in ((9, "Dobrý den jak se máte dnes", 60), (11, "Ano", 50)):
        bot.message(user, _utc(2026, 3, day, 12), words, score)
    bot.message(user, _utc(2026, 3, 15, 22, 30), "Dobrou noc", 80)  # 23:30 Sunday in Prague
    bot.message(user, _utc(2026, 3, 16, 7), "Dnes je pondělí", 100)  # today: left out
    monday = _utc(2026, 3, 16, 9)

    job = bot.run("mluvme.generate_weekly_report", user_id=user, now=monday.isoformat())

    report = job.result
    assert report is not None
    assert (report["week_start"], report["week_end"]) == ("2026-03-09", "2026-03-15")
    assert report["messages"] == 3
    assert report["words"] == 6 + 1 + 2
    assert report["active_days"] == 3
    assert report["avg_correctness"] == 63.3
    assert [d["messages"] for d in report["days"]] == [1, 0, 1, 0, 0, 0, 1]
    assert report["recommendations"] == ["practice_more_often", "review_mistakes", "write_longer"]
    assert report["cached"] is False

    cached = bot.run(
        "mluvme.generate_weekly_report",
        user_id=user,
        now=(monday + timedelta(days=6)).isoformat(),
    )
    assert cached.result is not None
    assert cached.result["cached"] is True
    assert cached.result["week_start"] == "2026-03-09"

    next_week = bot.run(
        "mluvme.generate_weekly_report", user_id=user, now=(monday + timedelta(days=7)).isoformat()
    )
    assert next_week.result is not None
    assert (next_week.result["cached"], next_week.result["week_start"]) == (False, "2026-03-16")
    assert next_week.result["messages"] == 1
    assert next_week.result["recommendations"] == ["practice_more_often", "write_longer"]


def test_a_good_week_gets_encouragement(bot: Bot) -> None:
    user = bot.user(timezone="UTC")
    for day in range(9, 16):
        bot.message(
            user, _utc(2026, 3, day, 12), "Dnes jsem byl v obchodě a koupil jsem chleba", 95
        )
    job = bot.run("mluvme.generate_weekly_report", user_id=user, now=_utc(2026, 3, 16).isoformat())
    assert job.result is not None
    assert job.result["recommendations"] == ["keep_going"]
    assert job.result["active_days"] == 7


def test_platform_metrics_count_users_and_messages(bot: Bot) -> None:
    now = _utc(2026, 3, 10, 12)
    active = bot.user()
    bot.user(last_activity_at=now - timedelta(days=3))
    bot.user(last_activity_at=now - timedelta(days=30))
    bot.message(active, now - timedelta(hours=1))
    bot.message(active, now - timedelta(hours=30))

    job = bot.run("mluvme.aggregate_platform_metrics", now=now.isoformat())

    assert job.result is not None
    assert {k: v for k, v in job.result.items() if k != "captured_at"} == {
        "total_users": 3,
        "active_users_day": 1,
        "active_users_week": 2,
        "messages_day": 1,
        "messages_total": 2,
    }
    with session() as db:
        assert db.scalar(select(func.count(PlatformMetrics.id))) == 1


def test_all_users_daily_stats_fan_out_to_active_users_for_their_last_full_day(bot: Bot) -> None:
    now = _utc(2026, 3, 10, 0, 5)  # the 00:05 UTC run
    tokyo = bot.user(timezone="Asia/Tokyo")
    los_angeles = bot.user(timezone="America/Los_Angeles")
    bot.user(timezone="UTC", last_activity_at=now - timedelta(days=10))  # not active
    bot.message(tokyo, _utc(2026, 3, 9, 3))  # 9 March 12:00 in Tokyo
    bot.message(los_angeles, _utc(2026, 3, 8, 20))  # 8 March 13:00 in Los Angeles

    job = bot.run("mluvme.calculate_all_users_daily_stats", now=now.isoformat())

    assert job.result is not None and job.result["count"] == 2
    with session() as db:
        rows = {(r.user_id, r.day, r.messages) for r in db.scalars(select(DailyStats))}
    # 00:05 UTC is 09:05 on 10 March in Tokyo but 17:05 on 9 March in Los Angeles
    assert rows == {(tokyo, date(2026, 3, 9), 1), (los_angeles, date(2026, 3, 8), 1)}


def test_prepare_creates_synthetic_data_once(bot: Bot) -> None:
    settings = get_settings()
    prepare(settings)
    with session() as db:
        users = db.scalar(select(func.count(User.id)))
        messages = db.scalar(select(func.count(Message.id)))
        real = db.scalar(select(func.count(User.id)).where(User.synthetic.is_(False)))
        names = set(db.scalars(select(User.username)))
    prepare(settings)
    with session() as db:
        assert db.scalar(select(func.count(User.id))) == users
        assert db.scalar(select(func.count(Message.id))) == messages
    assert users and messages and real == 0
    assert all(name.startswith("synthetic-user-") for name in names)


def test_the_example_shares_the_job_stores_postgresql_database(bot: Bot, pg_url: str) -> None:
    """conveyor's own tables and the mluvme_* tables live side by side, as under conveyor up."""
    store = SqlStore(pg_url)
    store.migrate()
    try:
        conveyor = InlineConveyor(settings=inline_settings(database_url=pg_url), store=store)
        user = bot.user()
        bot.message(user, _utc(2026, 3, 9, 12))
        job = conveyor.submit("mluvme.calculate_daily_statistics", user_id=user, day="2026-03-09")
        assert job.state is JobState.SUCCEEDED
        stored = store.get_job(job.id)
        assert stored is not None and stored.result is not None
        assert stored.result["messages_count"] == 1
    finally:
        store.close()
