"""Notification tasks (seed: ``backend/tasks/notifications.py``), on ``notifications``.

Each one decides whether to write (settings, today's activity) and hands the
localized text to the catalog's ``telegram.send_message`` (see notify.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from conveyor.catalog.fanout import fanout
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task
from examples.mluvme.analytics import weekly_report
from examples.mluvme.clock import local_day, resolve_now
from examples.mluvme.db import session
from examples.mluvme.dispatch import worker_submitter
from examples.mluvme.messages import plural, render
from examples.mluvme.models import User
from examples.mluvme.notify import send_telegram, skipped
from examples.mluvme.schedules import SCHEDULES
from examples.mluvme.users import active_users, load_user, messages_today, today

QUEUE = "notifications"
#: the seed's throttling: one reminder every 2 seconds, across every worker
REMINDER_RATE = "1/2s"
#: the daily challenge is this many messages; users hear about it at 3 and at 4
CHALLENGE_MESSAGES = 5
CHALLENGE_NOTIFY_AT = (3, 4)


def _wants(user: User, setting: bool) -> bool:
    return user.notifications_enabled and setting


@task(name="mluvme.send_streak_reminder", queue=QUEUE, retry=RetryPolicy(max_retries=5))
def send_streak_reminder(user_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Remind a user who has not practiced today (their calendar) to keep the streak."""
    moment = resolve_now(now)
    with session() as db:
        user = load_user(db, user_id)
        if not _wants(user, user.streak_reminders):
            return skipped("notifications_off", user_id=user_id)
        last = user.last_activity_at
        if last is not None and local_day(last, user.timezone) == today(user, moment):
            return skipped("active_today", user_id=user_id)
        if user.streak_days > 0:
            text = render(
                user.locale,
                "streak_reminder",
                days=user.streak_days,
                days_word=plural(user.locale, "day", user.streak_days),
            )
        else:
            text = render(user.locale, "streak_start")
        return {"user_id": user_id, **send_telegram(user, text)}


@task(
    name="mluvme.send_daily_reminders",
    queue=QUEUE,
    schedule=SCHEDULES["mluvme.send_daily_reminders"],
)
def send_daily_reminders(now: datetime | None = None) -> dict[str, Any]:
    """A streak reminder job per user active in the last 7 days with reminders on, 2 s apart.

    The jobs carry the rate ``1/2s`` as a cluster-wide limit, so however many
    workers take them, Telegram sees one reminder every two seconds.
    """
    moment = resolve_now(now)
    with session() as db:
        items: list[dict[str, Any]] = [
            {"user_id": u.id, "timezone": u.timezone}
            for u in active_users(db, moment)
            if _wants(u, u.streak_reminders)
        ]
    if now is not None:  # a run for a given time (tests, replays) passes it on
        items = [{**item, "now": moment.isoformat()} for item in items]
    result = fanout(send_streak_reminder, items, rate=REMINDER_RATE, submitter=worker_submitter())
    return {
        "count": result.count,
        "first_due": result.first_due.isoformat() if result.first_due else None,
        "last_due": result.last_due.isoformat() if result.last_due else None,
        "job_ids": result.job_ids,
    }


@task(name="mluvme.send_daily_challenge_notification", queue=QUEUE)
def send_daily_challenge_notification(user_id: int, now: datetime | None = None) -> dict[str, Any]:
    """At 3 or 4 messages today, tell the user how many are left for the daily challenge."""
    moment = resolve_now(now)
    with session() as db:
        user = load_user(db, user_id)
        if not _wants(user, user.challenge_notifications):
            return skipped("notifications_off", user_id=user_id)
        count = messages_today(db, user, moment)
        if count not in CHALLENGE_NOTIFY_AT:
            return skipped("not_at_threshold", user_id=user_id, messages_today=count)
        left = CHALLENGE_MESSAGES - count
        word = plural(user.locale, "message", left)
        text = render(user.locale, "daily_challenge", left=left, left_word=word)
        return {"user_id": user_id, "messages_today": count, **send_telegram(user, text)}


def _correctness(value: float | None) -> str:
    return "—" if value is None else f"{value:g}%"


@task(name="mluvme.send_weekly_report_notification", queue=QUEUE, retry=RetryPolicy(max_retries=3))
def send_weekly_report_notification(user_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Send the weekly report (generated or taken from its one-week cache), localized."""
    moment = resolve_now(now)
    with session() as db:
        user = load_user(db, user_id)
        if not _wants(user, user.weekly_reports):
            return skipped("notifications_off", user_id=user_id)
        report = weekly_report(db, user, moment)
        advice = "\n".join(
            "• " + render(user.locale, f"rec_{key}") for key in report["recommendations"]
        )
        text = render(
            user.locale,
            "weekly_report",
            start=report["week_start"],
            end=report["week_end"],
            messages=report["messages"],
            words=report["words"],
            correctness=_correctness(report["avg_correctness"]),
            active_days=report["active_days"],
            streak=user.streak_days,
            recommendations=advice,
        )
        return {"user_id": user_id, "week_start": report["week_start"], **send_telegram(user, text)}


@task(
    name="mluvme.send_weekly_reports",
    queue=QUEUE,
    schedule=SCHEDULES["mluvme.send_weekly_reports"],
)
def send_weekly_reports(now: datetime | None = None) -> dict[str, Any]:
    """Mondays: a weekly report notification job per user active in the last 7 days."""
    moment = resolve_now(now)
    with session() as db:
        items: list[dict[str, Any]] = [
            {"user_id": u.id} for u in active_users(db, moment) if _wants(u, u.weekly_reports)
        ]
    if now is not None:
        items = [{**item, "now": moment.isoformat()} for item in items]
    result = fanout(
        send_weekly_report_notification, items, rate=REMINDER_RATE, submitter=worker_submitter()
    )
    return {"count": result.count, "job_ids": result.job_ids}
