"""MentorHub's tasks (the seed's ``app/tasks/celery_tasks.py``), all ``mentorhub.<name>``.

Emails go through the catalog's ``email.send`` with its ``verification``,
``password_reset`` and ``session_reminder`` templates. A session is reminded once:
``remind_session`` locks the session row, sends, and sets ``reminded_at`` in one
transaction, so the reminder scheduled with ``eta`` and the hourly sweep never
both send (and a failed send leaves the session unreminded, to be retried).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, aliased

from conveyor import RetryPolicy, task
from conveyor.catalog import email
from examples.mentorhub.config import mentorhub_settings, schedule_of
from examples.mentorhub.models import (
    Course,
    DailyStats,
    MentorSession,
    Token,
    User,
    engine,
    utcnow,
)

#: the seed's ``max_retries=3`` with ``countdown=60 * 2 ** retries``
EMAIL_RETRY = RetryPolicy(max_retries=3, base_delay=60.0, factor=2.0, jitter=False, retry_on=())
SESSION_DATE_FORMAT = "%d.%m.%Y %H:%M"

Address = email.Address
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _send(to: str, template: str, context: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = email.send(to=[to], template=template, context=context)
    return result


@task(name="mentorhub.send_verification_email_task", queue="email", retry=EMAIL_RETRY)
def send_verification_email_task(
    email: Address, username: Name, token: Annotated[str, Field(min_length=8, max_length=100)]
) -> dict[str, Any]:
    """Email the link that confirms ``email`` (valid MENTORHUB_VERIFICATION_HOURS)."""
    cfg = mentorhub_settings()
    link = f"{cfg.frontend_url.rstrip('/')}/verify-email?token={token}"
    context = {"username": username, "verification_link": link}
    return _send(email, "verification", {**context, "expires_hours": cfg.verification_hours})


@task(name="mentorhub.send_password_reset_email_task", queue="email", retry=EMAIL_RETRY)
def send_password_reset_email_task(
    email: Address, username: Name, token: Annotated[str, Field(min_length=8, max_length=100)]
) -> dict[str, Any]:
    """Email the password-reset link (valid MENTORHUB_RESET_HOURS)."""
    cfg = mentorhub_settings()
    link = f"{cfg.frontend_url.rstrip('/')}/reset-password?token={token}"
    return _send(
        email,
        "password_reset",
        {"username": username, "reset_link": link, "expires_hours": cfg.reset_hours},
    )


def remind_session(session_id: int, send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Send a session's reminder unless it was sent already or the session is off.

    The row is locked (``FOR UPDATE`` on PostgreSQL) while ``send`` runs and
    ``reminded_at`` is set in the same transaction.
    """
    with Session(engine()) as db, db.begin():
        row = db.scalars(
            select(MentorSession).where(MentorSession.id == session_id).with_for_update()
        ).first()
        if row is None:
            return {"session_id": session_id, "sent": 0, "skipped": "no_such_session"}
        if row.status != "booked":
            return {"session_id": session_id, "sent": 0, "skipped": row.status}
        if row.reminded_at is not None:
            return {
                "session_id": session_id,
                "sent": 0,
                "skipped": "already_reminded",
                "reminded_at": row.reminded_at.isoformat(),
            }
        result = send()
        row.reminded_at = utcnow()
        return {"session_id": session_id, **result}


@task(name="mentorhub.send_session_reminder_task", queue="email", retry=EMAIL_RETRY)
def send_session_reminder_task(
    email: Address,
    username: Name,
    session_date: Name,
    mentor_name: Name,
    session_link: Annotated[str, Field(min_length=1, max_length=2000)],
    session_id: Annotated[int | None, Field(ge=1)] = None,
) -> dict[str, Any]:
    """Remind the student of a session (scheduled with ``eta`` one hour before it).

    With ``session_id`` the reminder is sent once per session: skipped if the
    session was reminded already (e.g. by the hourly sweep) or cancelled.
    """
    context = {
        "username": username,
        "session_date": session_date,
        "mentor_name": mentor_name,
        "session_link": session_link,
    }

    def send() -> dict[str, Any]:
        return _send(email, "session_reminder", context)

    return send() if session_id is None else remind_session(session_id, send)


def reminder_arguments(session: MentorSession, student: User, mentor: User) -> dict[str, Any]:
    """The keyword arguments of ``send_session_reminder_task`` for ``session``."""
    frontend = mentorhub_settings().frontend_url.rstrip("/")
    return {
        "email": student.email,
        "username": student.username,
        "session_date": session.scheduled_at.astimezone(UTC).strftime(SESSION_DATE_FORMAT),
        "mentor_name": mentor.full_name,
        "session_link": f"{frontend}/sessions/{session.id}",
        "session_id": session.id,
    }


def _due_sessions(now: datetime, until: datetime) -> list[dict[str, Any]]:
    student, mentor = aliased(User), aliased(User)
    query = (
        select(MentorSession, student, mentor)
        .join(student, student.id == MentorSession.student_id)
        .join(mentor, mentor.id == MentorSession.mentor_id)
        .where(
            MentorSession.status == "booked",
            MentorSession.reminded_at.is_(None),
            MentorSession.scheduled_at > now,
            MentorSession.scheduled_at <= until,
        )
        .order_by(MentorSession.scheduled_at, MentorSession.id)
    )
    with Session(engine()) as db:
        return [reminder_arguments(s, st, m) for s, st, m in db.execute(query).all()]


@task(
    name="mentorhub.send_session_reminders",
    queue="notifications",
    retry=EMAIL_RETRY,
    schedule=schedule_of("send_session_reminders"),
)
def send_session_reminders() -> dict[str, Any]:
    """Hourly: remind every session starting within the next hour that was not reminded
    yet (each session once, however often this runs)."""
    now = utcnow()
    reminded: list[int] = []
    skipped: list[int] = []
    for arguments in _due_sessions(now, now + mentorhub_settings().reminder_before):
        outcome = send_session_reminder_task(**arguments)
        (reminded if outcome.get("sent") else skipped).append(arguments["session_id"])
    return {"reminded": reminded, "skipped": skipped}


@task(
    name="mentorhub.cleanup_expired_tokens",
    queue="cleanup",
    schedule=schedule_of("cleanup_expired_tokens"),
)
def cleanup_expired_tokens() -> dict[str, Any]:
    """Delete verification and reset tokens past their expiry (live ones stay)."""
    with Session(engine()) as db, db.begin():
        expired = delete(Token).where(Token.expires_at < utcnow()).returning(Token.id)
        deleted = len(db.scalars(expired).all())
    return {"deleted": deleted}


def _created_between(
    db: Session, model: type[User | MentorSession | Course], start: datetime, end: datetime
) -> int:
    column = model.created_at
    count = db.scalar(select(func.count()).select_from(model).where(column >= start, column < end))
    return int(count or 0)


@task(
    name="mentorhub.generate_daily_stats",
    queue="analytics",
    schedule=schedule_of("generate_daily_stats"),
)
def generate_daily_stats(day: date | None = None) -> dict[str, Any]:
    """Count the new users, sessions and courses of one UTC day (default: yesterday)
    into ``mentorhub_daily_stats`` (running it again for a day replaces that day's row)."""
    chosen = day or (utcnow().date() - timedelta(days=1))
    start = datetime.combine(chosen, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    with Session(engine()) as db, db.begin():
        stats = DailyStats(
            day=chosen,
            new_users=_created_between(db, User, start, end),
            new_sessions=_created_between(db, MentorSession, start, end),
            new_courses=_created_between(db, Course, start, end),
            generated_at=utcnow(),
        )
        db.merge(stats)
        return {
            "day": chosen.isoformat(),
            "new_users": stats.new_users,
            "new_sessions": stats.new_sessions,
            "new_courses": stats.new_courses,
        }
