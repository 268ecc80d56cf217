"""Analytics tasks (seed: ``backend/tasks/analytics.py``), on the ``analytics`` queue."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor.catalog.fanout import fanout
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task
from examples.mluvme.clock import as_utc, day_bounds, resolve_now
from examples.mluvme.db import session
from examples.mluvme.dispatch import worker_submitter
from examples.mluvme.models import DailyStats, Message, PlatformMetrics, User, WeeklyReport
from examples.mluvme.schedules import SCHEDULES
from examples.mluvme.users import active_users, load_user, messages_between, today

QUEUE = "analytics"
#: a day's statistics computed while the day was still running are reused this long
STATS_TTL = timedelta(hours=1)
#: a weekly report is reused for a week (the seed's cache lifetime)
REPORT_TTL = timedelta(days=7)
#: a message shorter than this many words on average earns the "write longer" advice
SHORT_MESSAGE_WORDS = 5
LOW_CORRECTNESS = 70


def _average(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _stats_result(row: DailyStats, *, cached: bool) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "day": row.day.isoformat(),
        "messages_count": row.messages,
        "words_count": row.words,
        "avg_correctness": row.avg_correctness,
        "computed_at": as_utc(row.computed_at).isoformat(),
        "cached": cached,
    }


def _fresh(row: DailyStats, day_end: datetime, now: datetime) -> bool:
    computed = as_utc(row.computed_at)
    return computed >= day_end or now - computed < STATS_TTL


@task(name="mluvme.calculate_daily_statistics", queue=QUEUE, retry=RetryPolicy(max_retries=3))
def calculate_daily_statistics(
    user_id: int, day: date | None = None, now: datetime | None = None, refresh: bool = False
) -> dict[str, Any]:
    """One user's messages, words and average correctness on ``day`` (their today by default).

    Cached in ``mluvme_daily_stats``: a finished day is computed once; the running
    day is recomputed when its row is older than an hour (or ``refresh``).
    """
    moment = resolve_now(now)
    with session() as db:
        user = load_user(db, user_id)
        target = day or today(user, moment)
        start, end = day_bounds(target, user.timezone)
        row = db.scalars(
            select(DailyStats).where(DailyStats.user_id == user_id, DailyStats.day == target)
        ).first()
        if row is not None and not refresh and _fresh(row, end, moment):
            return _stats_result(row, cached=True)
        messages = messages_between(db, user_id, start, end)
        if row is None:
            row = DailyStats(user_id=user_id, day=target)
            db.add(row)
        row.messages = len(messages)
        row.words = sum(m.words for m in messages)
        row.avg_correctness = _average([m.correctness for m in messages])
        row.computed_at = moment
        db.flush()
        return _stats_result(row, cached=False)


def _count(db: Session, query: Any) -> int:
    return int(db.scalar(query) or 0)


@task(
    name="mluvme.aggregate_platform_metrics",
    queue=QUEUE,
    rate_limit="10/m",
    schedule=SCHEDULES["mluvme.aggregate_platform_metrics"],
)
def aggregate_platform_metrics(now: datetime | None = None) -> dict[str, Any]:
    """Total and active users (last 24 h, last 7 days) and messages; one row per run."""
    moment = resolve_now(now)
    day_ago, week_ago = moment - timedelta(days=1), moment - timedelta(days=7)
    with session() as db:
        row = PlatformMetrics(
            captured_at=moment,
            total_users=_count(db, select(func.count(User.id))),
            active_users_day=_count(
                db, select(func.count(User.id)).where(User.last_activity_at >= day_ago)
            ),
            active_users_week=_count(
                db, select(func.count(User.id)).where(User.last_activity_at >= week_ago)
            ),
            messages_day=_count(
                db, select(func.count(Message.id)).where(Message.created_at >= day_ago)
            ),
            messages_total=_count(db, select(func.count(Message.id))),
        )
        db.add(row)
        db.flush()
        return {
            "captured_at": moment.isoformat(),
            "total_users": row.total_users,
            "active_users_day": row.active_users_day,
            "active_users_week": row.active_users_week,
            "messages_day": row.messages_day,
            "messages_total": row.messages_total,
        }


def recommendations(messages: int, words: int, active_days: int, avg: float | None) -> list[str]:
    """Advice keys (rendered by messages.py as ``rec_<key>``) for a week of practice."""
    if messages == 0:
        return ["start_practicing"]
    advice = []
    if active_days < 5:
        advice.append("practice_more_often")
    if avg is not None and avg < LOW_CORRECTNESS:
        advice.append("review_mistakes")
    if words / messages < SHORT_MESSAGE_WORDS:
        advice.append("write_longer")
    return advice or ["keep_going"]


def _week_data(db: Session, user: User, week_start: date) -> dict[str, Any]:
    days: list[dict[str, Any]] = []
    scores: list[int] = []
    for offset in range(7):
        day = week_start + timedelta(days=offset)
        start, end = day_bounds(day, user.timezone)
        messages = messages_between(db, user.id, start, end)
        scores.extend(m.correctness for m in messages)
        days.append(
            {
                "day": day.isoformat(),
                "messages": len(messages),
                "words": sum(m.words for m in messages),
            }
        )
    total = sum(d["messages"] for d in days)
    words = sum(d["words"] for d in days)
    active = sum(1 for d in days if d["messages"])
    avg = _average(scores)
    return {
        "user_id": user.id,
        "week_start": week_start.isoformat(),
        "week_end": (week_start + timedelta(days=6)).isoformat(),
        "messages": total,
        "words": words,
        "avg_correctness": avg,
        "active_days": active,
        "streak_days": user.streak_days,
        "days": days,
        "recommendations": recommendations(total, words, active, avg),
    }


def weekly_report(
    db: Session, user: User, now: datetime, *, refresh: bool = False
) -> dict[str, Any]:
    """The user's report of the 7 days before today (their calendar), cached one week."""
    latest = db.scalars(
        select(WeeklyReport)
        .where(WeeklyReport.user_id == user.id)
        .order_by(WeeklyReport.generated_at.desc())
    ).first()
    if latest is not None and not refresh and now - as_utc(latest.generated_at) < REPORT_TTL:
        generated = as_utc(latest.generated_at).isoformat()
        return {**latest.data, "generated_at": generated, "cached": True}
    week_start = today(user, now) - timedelta(days=7)
    data = _week_data(db, user, week_start)
    row = db.scalars(
        select(WeeklyReport).where(
            WeeklyReport.user_id == user.id, WeeklyReport.week_start == week_start
        )
    ).first()
    if row is None:
        row = WeeklyReport(user_id=user.id, week_start=week_start)
        db.add(row)
    row.week_end = week_start + timedelta(days=6)
    row.data = data
    row.generated_at = now
    db.flush()
    return {**data, "generated_at": now.isoformat(), "cached": False}


@task(name="mluvme.generate_weekly_report", queue=QUEUE, retry=RetryPolicy(max_retries=3))
def generate_weekly_report(
    user_id: int, now: datetime | None = None, refresh: bool = False
) -> dict[str, Any]:
    """The last 7 days (messages, words, correctness, active days) plus recommendations."""
    moment = resolve_now(now)
    with session() as db:
        return weekly_report(db, load_user(db, user_id), moment, refresh=refresh)


@task(
    name="mluvme.calculate_all_users_daily_stats",
    queue=QUEUE,
    schedule=SCHEDULES["mluvme.calculate_all_users_daily_stats"],
)
def calculate_all_users_daily_stats(now: datetime | None = None) -> dict[str, Any]:
    """Fan out ``calculate_daily_statistics`` for every active user's last complete day."""
    moment = resolve_now(now)
    with session() as db:
        items = [
            {"user_id": u.id, "day": (today(u, moment) - timedelta(days=1)).isoformat()}
            for u in active_users(db, moment)
        ]
    result = fanout(calculate_daily_statistics, items, submitter=worker_submitter())
    return {"count": result.count, "job_ids": result.job_ids}
