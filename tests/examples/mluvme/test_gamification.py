"""Streaks counted in each user's time zone, and milestone bonuses paid exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from conveyor.errors import ArgumentsInvalid
from examples.mluvme.db import session
from examples.mluvme.gamification import award_streak_milestone_bonus
from examples.mluvme.models import StreakMilestoneAward
from tests.examples.mluvme.conftest import Bot
from tests.support.catalog import Configure

pytestmark = pytest.mark.integration

#: the 00:05 UTC run of check_and_reset_streaks, two days after the US moved to summer time
RUN_AT = datetime(2026, 3, 10, 0, 5, tzinfo=UTC)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_streak_reset_at_the_boundary_of_each_users_own_day(bot: Bot) -> None:
    # Tokyo is UTC+9: its Monday 9 March starts at 15:00 UTC on Sunday 8 March
    tokyo_kept = bot.user(
        timezone="Asia/Tokyo", streak_days=5, last_activity_at=_utc(2026, 3, 8, 15)
    )
    tokyo_reset = bot.user(
        timezone="Asia/Tokyo", streak_days=5, last_activity_at=_utc(2026, 3, 8, 14, 59)
    )
    # the same instant is Sunday 8 March 10:59 in New York (EDT since that night): yesterday there
    new_york_kept = bot.user(
        timezone="America/New_York", streak_days=5, last_activity_at=_utc(2026, 3, 8, 14, 59)
    )
    # New York's Sunday started at 05:00 UTC (still EST, UTC-5, at midnight)
    new_york_reset = bot.user(
        timezone="America/New_York", streak_days=5, last_activity_at=_utc(2026, 3, 8, 4, 59)
    )
    utc_kept = bot.user(timezone="UTC", streak_days=2, last_activity_at=_utc(2026, 3, 9, 0, 0))
    utc_reset = bot.user(timezone="UTC", streak_days=2, last_activity_at=_utc(2026, 3, 8, 23, 59))
    no_streak = bot.user(timezone="UTC", streak_days=0, last_activity_at=_utc(2026, 1, 1))

    job = bot.run("mluvme.check_and_reset_streaks", now=RUN_AT.isoformat())

    assert job.result is not None
    assert job.result["checked"] == 6  # users without a streak are not looked at
    assert sorted(job.result["reset_user_ids"]) == sorted([tokyo_reset, new_york_reset, utc_reset])
    streaks = {uid: bot.get(uid).streak_days for uid in range(1, no_streak + 1)}
    assert streaks == {
        tokyo_kept: 5,
        tokyo_reset: 0,
        new_york_kept: 5,
        new_york_reset: 0,
        utc_kept: 2,
        utc_reset: 0,
        no_streak: 0,
    }


def test_streak_grows_by_the_users_calendar_not_utcs(bot: Bot) -> None:
    tokyo = bot.user(timezone="Asia/Tokyo")
    prague = bot.user(timezone="Europe/Prague")
    # 14:30 and 15:30 UTC on the same UTC day: two different days in Tokyo, one in Prague
    for at in (_utc(2026, 3, 8, 14, 30), _utc(2026, 3, 8, 15, 30)):
        bot.message(tokyo, at)
        bot.message(prague, at)
    assert bot.get(tokyo).streak_days == 2
    assert bot.get(prague).streak_days == 1
    # a whole Tokyo day without a message starts the streak again
    assert bot.message(tokyo, _utc(2026, 3, 10, 15, 30)).streak_days == 1  # 11 March
    assert bot.get(tokyo).longest_streak == 2


def test_reaching_seven_days_calls_for_the_milestone_bonus(bot: Bot) -> None:
    user = bot.user(timezone="UTC")
    activities = [bot.message(user, _utc(2026, 3, day, 12)) for day in range(1, 9)]
    assert [a.streak_days for a in activities] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [a.milestone for a in activities] == [None] * 6 + [7, None]


def test_milestone_bonus_is_awarded_once_when_run_twice(bot: Bot) -> None:
    user = bot.user(streak_days=7, locale="ru")

    first = bot.run("mluvme.award_streak_milestone_bonus", user_id=user, streak_days=7)
    second = bot.run("mluvme.award_streak_milestone_bonus", user_id=user, streak_days=7)

    assert first.result is not None and second.result is not None
    assert first.result["awarded"] is True
    assert first.result["bonus"] == 50
    assert second.result == {"awarded": False, "reason": "already_awarded", "stars": 50}
    assert bot.get(user).stars == 50
    with session() as db:
        awards = db.scalar(select(func.count(StreakMilestoneAward.id)))
    assert awards == 1
    assert [m["text"] for m in bot.sent()] == ["🏆 7 дней подряд! Бонус: +50 ⭐"]


def test_concurrent_awards_credit_the_bonus_once(bot: Bot, configure: Configure) -> None:
    configure(telegram_bot_token="")  # dry run: no job to submit from these plain threads
    user = bot.user(streak_days=30, locale="uk")
    results: list[dict[str, object]] = []

    def award() -> None:
        results.append(award_streak_milestone_bonus(user_id=user, streak_days=30))

    threads = [threading.Thread(target=award) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(bool(r["awarded"]) for r in results) == [False, False, False, True]
    assert bot.get(user).stars == 200


def test_milestone_bonus_needs_the_streak_and_a_milestone(bot: Bot) -> None:
    user = bot.user(streak_days=6)
    job = bot.run("mluvme.award_streak_milestone_bonus", user_id=user, streak_days=7)
    assert job.result == {"awarded": False, "reason": "streak_too_short", "streak": 6}
    assert bot.get(user).stars == 0
    with pytest.raises(ArgumentsInvalid):
        bot.inline.submit("mluvme.award_streak_milestone_bonus", user_id=user, streak_days=8)
