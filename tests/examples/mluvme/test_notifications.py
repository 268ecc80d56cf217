"""Reminders, daily challenge progress and weekly reports, sent through telegram.send_message."""

# ruff: noqa: RUF001  (the expected texts are Russian and Ukrainian)

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from examples.mluvme.activity import follow_ups
from tests.examples.mluvme.conftest import Bot
from tests.support.catalog import Configure

pytestmark = pytest.mark.integration

#: the 18:00 UTC run of send_daily_reminders (19:00 in Prague)
EVENING = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


def test_daily_reminders_go_to_users_active_in_the_last_7_days_with_reminders_on(
    bot: Bot,
) -> None:
    ru = bot.user(locale="ru", streak_days=3, last_activity_at=EVENING - timedelta(days=2))
    uk = bot.user(locale="uk", streak_days=0, last_activity_at=EVENING - timedelta(days=6))
    bot.user(streak_days=9, last_activity_at=EVENING - timedelta(days=8))  # lapsed
    bot.user(last_activity_at=EVENING - timedelta(days=1), notifications_enabled=False)
    bot.user(last_activity_at=EVENING - timedelta(days=1), streak_reminders=False)
    bot.user(last_activity_at=None)  # never wrote
    practiced = bot.user(streak_days=4, last_activity_at=EVENING - timedelta(hours=2))

    job = bot.run("mluvme.send_daily_reminders", now=EVENING.isoformat())

    assert job.result is not None
    assert job.result["count"] == 3  # ru, uk and the one who practiced today
    jobs = [bot.inline.get(job_id) for job_id in job.result["job_ids"]]
    assert [j.kwargs["user_id"] for j in jobs if j] == [ru, uk, practiced]
    # 2 s apart, under a rate limit every worker of the cluster shares
    assert all(j and j.rate_limit == "1/2s" for j in jobs)
    first_due = datetime.fromisoformat(job.result["first_due"])
    last_due = datetime.fromisoformat(job.result["last_due"])
    assert 3.9 <= (last_due - first_due).total_seconds() <= 4.1
    second, third = (j.scheduled_for for j in jobs[1:] if j)
    assert second is not None and third is not None
    assert (third - second).total_seconds() == 2.0
    # the one who practiced today (in Prague) is not bothered
    sent = bot.sent()
    assert [m["chat_id"] for m in sent] == [bot.get(ru).telegram_id, bot.get(uk).telegram_id]
    assert sent[0]["text"].startswith("🔥 Ваша серия — 3 дня подряд!")
    assert sent[1]["text"].startswith("Сьогодні ще не було практики.")


def test_streak_reminder_uses_the_users_today(bot: Bot) -> None:
    # 15:30 UTC on 9 March: already 10 March in Tokyo, still 9 March in Los Angeles
    last = datetime(2026, 3, 9, 15, 30, tzinfo=UTC)
    now = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)  # 10 March 17:00 Tokyo, 01:00 Los Angeles
    tokyo = bot.user(timezone="Asia/Tokyo", streak_days=2, last_activity_at=last)
    los_angeles = bot.user(
        timezone="America/Los_Angeles", locale="uk", streak_days=2, last_activity_at=last
    )

    skipped = bot.run("mluvme.send_streak_reminder", user_id=tokyo, now=now.isoformat())
    sent = bot.run("mluvme.send_streak_reminder", user_id=los_angeles, now=now.isoformat())

    assert skipped.result == {"sent": False, "skipped": "active_today", "user_id": tokyo}
    assert sent.result is not None and sent.result["sent"] is True
    # the Telegram message is its own job of the catalog task
    telegram_job = bot.inline.get(sent.result["job_id"])
    assert telegram_job is not None and telegram_job.task == "telegram.send_message"
    assert [m["text"] for m in bot.sent()] == [
        "🔥 Ваша серія — 2 дні поспіль! Напишіть сьогодні хоча б одне повідомлення чеською, "
        "щоб її не втратити."
    ]


def test_challenge_notification_at_three_and_four_messages_only(bot: Bot) -> None:
    uk = bot.user(locale="uk", timezone="Europe/Kyiv")
    ru = bot.user(locale="ru", timezone="Europe/Kyiv")
    start = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    outcomes = []
    for n in range(5):
        at = start + timedelta(minutes=n)
        activity = bot.message(uk, at)
        assert bool(follow_ups(activity)) is (activity.messages_today in (3, 4))
        job = bot.run("mluvme.send_daily_challenge_notification", user_id=uk, now=at.isoformat())
        assert job.result is not None
        outcomes.append(job.result["sent"])
    for n in range(3):
        bot.message(ru, start + timedelta(minutes=n))
    bot.run("mluvme.send_daily_challenge_notification", user_id=ru, now=start.isoformat())

    assert outcomes == [False, False, True, True, False]
    assert [m["text"] for m in bot.sent()] == [
        "💪 Ще 2 повідомлення — і щоденне завдання виконано!",
        "💪 Ще 1 повідомлення — і щоденне завдання виконано!",
        "💪 Ещё 2 сообщения — и ежедневное задание выполнено!",
    ]


def test_challenge_counts_messages_of_the_users_day(bot: Bot) -> None:
    user = bot.user(timezone="America/New_York")
    # three messages around UTC midnight: all on 9 March in New York (EDT, UTC-4)
    for at in (
        datetime(2026, 3, 9, 23, 50, tzinfo=UTC),
        datetime(2026, 3, 10, 0, 10, tzinfo=UTC),
        datetime(2026, 3, 10, 3, 59, tzinfo=UTC),
    ):
        bot.message(user, at)
    job = bot.run(
        "mluvme.send_daily_challenge_notification",
        user_id=user,
        now=datetime(2026, 3, 10, 3, 59, tzinfo=UTC).isoformat(),
    )
    assert job.result is not None
    assert job.result["messages_today"] == 3
    assert job.result["sent"] is True


def test_notification_settings_are_respected(bot: Bot) -> None:
    off = bot.user(challenge_notifications=False)
    now = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    for n in range(3):
        bot.message(off, now + timedelta(minutes=n))
    job = bot.run("mluvme.send_daily_challenge_notification", user_id=off, now=now.isoformat())
    assert job.result == {"sent": False, "skipped": "notifications_off", "user_id": off}
    muted = bot.user(notifications_enabled=False)
    job = bot.run("mluvme.send_weekly_report_notification", user_id=muted)
    assert job.result is not None and job.result["skipped"] == "notifications_off"
    assert bot.sent() == []


def test_weekly_report_notification_in_both_locales(bot: Bot) -> None:
    monday = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    ru = bot.user(locale="ru", streak_days=2)
    uk = bot.user(locale="uk")
    for user in (ru, uk):
        bot.message(user, datetime(2026, 3, 14, 10, 0, tzinfo=UTC), "Dnes jsem byl v obchodě", 60)
        bot.message(user, datetime(2026, 3, 15, 10, 0, tzinfo=UTC), "Promiňte, nerozumím", 80)
        bot.run("mluvme.send_weekly_report_notification", user_id=user, now=monday.isoformat())

    ru_text, uk_text = (m["text"] for m in bot.sent())
    assert ru_text.startswith("📊 Итоги недели 2026-03-09 — 2026-03-15\nСообщений: 2\nСлов: 7\n")
    assert "Средняя точность: 70%" in ru_text
    assert "Активных дней: 2 из 7" in ru_text
    assert "• Старайтесь заниматься каждый день" in ru_text
    assert "• Пишите более длинные сообщения" in ru_text
    assert uk_text.startswith("📊 Підсумки тижня 2026-03-09 — 2026-03-15\nПовідомлень: 2\n")
    assert "Активних днів: 2 з 7" in uk_text
    assert "• Намагайтеся займатися щодня" in uk_text


def test_without_a_bot_token_nothing_is_sent(bot: Bot, configure: Configure) -> None:
    configure(telegram_bot_token="")
    user = bot.user(locale="uk", streak_days=1, last_activity_at=EVENING - timedelta(days=1))
    job = bot.run("mluvme.send_streak_reminder", user_id=user, now=EVENING.isoformat())
    assert job.result is not None
    assert job.result["dry_run"] is True
    assert job.result["text"].startswith("🔥 Ваша серія — 1 день поспіль!")
    assert bot.sent() == []


def test_demo_activity_submits_the_jobs_a_real_message_would(bot: Bot) -> None:
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    user = bot.user(synthetic=True, locale="uk", timezone="UTC")
    bot.user(synthetic=False)  # real users never get synthetic messages
    for minutes in (30, 20):
        bot.message(user, now - timedelta(minutes=minutes))

    job = bot.run("mluvme.simulate_activity", messages=1, seed=1, now=now.isoformat())

    assert job.result is not None
    assert job.result["synthetic"] is True
    assert [f["task"] for f in job.result["follow_ups"]] == [
        "mluvme.send_daily_challenge_notification"
    ]
    assert [m["text"] for m in bot.sent()] == [
        "💪 Ще 2 повідомлення — і щоденне завдання виконано!"
    ]


def test_monday_weekly_reports_fan_out_to_active_users_with_reports_on(bot: Bot) -> None:
    monday = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    active = bot.user(locale="ru", last_activity_at=monday - timedelta(days=1))
    bot.user(last_activity_at=monday - timedelta(days=8))  # lapsed: no report
    bot.user(last_activity_at=monday - timedelta(days=1), weekly_reports=False)

    job = bot.run("mluvme.send_weekly_reports", now=monday.isoformat())

    assert job.result is not None
    assert job.result["count"] == 1
    (child,) = [bot.inline.get(job_id) for job_id in job.result["job_ids"]]
    assert child is not None and child.kwargs["user_id"] == active
    assert [m["chat_id"] for m in bot.sent()] == [bot.get(active).telegram_id]
