"""The bot's tables (all prefixed ``mluvme_``), in the job store's database.

Seed 000/001: users (locale ru/uk, time zone, notification settings, streak,
stars), their messages (words, correctness), cached daily statistics and weekly
reports, platform metrics, and the streak milestones already awarded (unique
per user and milestone, which makes the award idempotent).

Every datetime is stored in UTC; SQLite hands them back naive, so read them
through :func:`examples.mluvme.clock.as_utc`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from examples.mluvme.clock import utcnow

LOCALES = ("ru", "uk")
#: streak lengths (days) that earn a bonus, and the stars each one gives
MILESTONES: dict[int, int] = {7: 50, 30: 200, 100: 500, 365: 2000}


class Base(DeclarativeBase):
    metadata = MetaData()


class User(Base):
    __tablename__ = "mluvme_users"
    __table_args__ = (CheckConstraint("locale IN ('ru', 'uk')", name="mluvme_users_locale"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    first_name: Mapped[str] = mapped_column(String(64), default="")
    locale: Mapped[str] = mapped_column(String(2), default="ru")
    #: IANA time zone: "today" and the streak are counted in it
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Prague")
    #: master switch; the three below refine it
    notifications_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    streak_reminders: Mapped[bool] = mapped_column(Boolean, default=True)
    challenge_notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    weekly_reports: Mapped[bool] = mapped_column(Boolean, default=True)
    streak_days: Mapped[int] = mapped_column(Integer, default=0)
    longest_streak: Mapped[int] = mapped_column(Integer, default=0)
    last_activity_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), index=True, default=None
    )
    #: bonus balance (Telegram stars in the bot)
    stars: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: rows made by examples.mluvme.synthetic (never real people)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class Message(Base):
    __tablename__ = "mluvme_messages"
    __table_args__ = (
        CheckConstraint("correctness BETWEEN 0 AND 100", name="mluvme_messages_correctness"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("mluvme_users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    words: Mapped[int] = mapped_column(Integer)
    #: 0-100, how correct the Czech of the message was
    correctness: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)


class DailyStats(Base):
    """One user's day (in the user's time zone); a cache with a freshness check."""

    __tablename__ = "mluvme_daily_stats"
    __table_args__ = (UniqueConstraint("user_id", "day", name="mluvme_daily_stats_user_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("mluvme_users.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, index=True)
    messages: Mapped[int] = mapped_column(Integer)
    words: Mapped[int] = mapped_column(Integer)
    avg_correctness: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WeeklyReport(Base):
    """The last 7 days of one user, with recommendations; cached one week."""

    __tablename__ = "mluvme_weekly_reports"
    __table_args__ = (
        UniqueConstraint("user_id", "week_start", name="mluvme_weekly_reports_user_week"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("mluvme_users.id", ondelete="CASCADE"))
    week_start: Mapped[date] = mapped_column(Date, index=True)
    week_end: Mapped[date] = mapped_column(Date)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    generated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlatformMetrics(Base):
    __tablename__ = "mluvme_platform_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    total_users: Mapped[int] = mapped_column(Integer)
    active_users_day: Mapped[int] = mapped_column(Integer)
    active_users_week: Mapped[int] = mapped_column(Integer)
    messages_day: Mapped[int] = mapped_column(Integer)
    messages_total: Mapped[int] = mapped_column(Integer)


class StreakMilestoneAward(Base):
    """A milestone bonus paid once: the unique (user, milestone) makes re-runs no-ops."""

    __tablename__ = "mluvme_streak_milestone_awards"
    __table_args__ = (
        UniqueConstraint("user_id", "milestone", name="mluvme_awards_user_milestone"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("mluvme_users.id", ondelete="CASCADE"))
    milestone: Mapped[int] = mapped_column(Integer)
    stars: Mapped[int] = mapped_column(Integer)
    awarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
