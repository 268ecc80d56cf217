"""MentorHub's tables (prefix ``mentorhub_``), in the job store's database.

Times are stored as naive UTC (``UTCDateTime`` converts on the way in and out),
so SQLite and PostgreSQL compare them the same way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Date, DateTime, Engine, ForeignKey, Integer, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conveyor.catalog.database import engine_for


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a time zone (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "mentorhub_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="student")  # student | mentor
    is_verified: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Token(Base):
    """A verification or password-reset token (the seed keeps them in a dict)."""

    __tablename__ = "mentorhub_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # verification | password_reset
    user_id: Mapped[int] = mapped_column(ForeignKey("mentorhub_users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Course(Base):
    __tablename__ = "mentorhub_courses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    mentor_id: Mapped[int] = mapped_column(ForeignKey("mentorhub_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class MentorSession(Base):
    """A booked mentoring session; ``reminded_at`` is set once its reminder went out."""

    __tablename__ = "mentorhub_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mentor_id: Mapped[int] = mapped_column(ForeignKey("mentorhub_users.id"))
    student_id: Mapped[int] = mapped_column(ForeignKey("mentorhub_users.id"))
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String(20), default="booked")  # booked | cancelled
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reminder_job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class DailyStats(Base):
    """What ``generate_daily_stats`` counted for one UTC day (one row per day)."""

    __tablename__ = "mentorhub_daily_stats"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    new_users: Mapped[int] = mapped_column(Integer)
    new_sessions: Mapped[int] = mapped_column(Integer)
    new_courses: Mapped[int] = mapped_column(Integer)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def engine() -> Engine:
    """The job store's database (``CONVEYOR_DATABASE_URL``), one pool per process."""
    return engine_for(None)


def create_tables(bind: Engine | None = None) -> None:
    Base.metadata.create_all(bind or engine())
