"""What MentorHub's web API does around the tasks (the seed's "Integration with API").

These run in the web process and submit jobs in-process (``TaskFunction.submit``,
through ``conveyor.local``); a backend on another machine would use
``conveyor.Client`` with the same task names instead.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor import Job
from examples.mentorhub.config import mentorhub_settings
from examples.mentorhub.models import MentorSession, Token, User, engine, utcnow
from examples.mentorhub.tasks import (
    reminder_arguments,
    send_password_reset_email_task,
    send_session_reminder_task,
    send_verification_email_task,
)


def _issue_token(db: Session, user: User, kind: str, valid_for: timedelta) -> str:
    value = secrets.token_urlsafe(32)
    db.add(Token(token=value, kind=kind, user_id=user.id, expires_at=utcnow() + valid_for))
    return value


def request_verification(email: str) -> Job | None:
    """``POST /send-verification``: a token and an email for an unverified user (None
    otherwise; the API answers the same either way, so it reveals no accounts)."""
    hours = mentorhub_settings().verification_hours
    with Session(engine()) as db, db.begin():
        user = db.scalars(select(User).where(User.email == email)).first()
        if user is None or user.is_verified:
            return None
        token = _issue_token(db, user, "verification", timedelta(hours=hours))
        username = user.username
    return send_verification_email_task.submit(email=email, username=username, token=token)


def request_password_reset(email: str) -> Job | None:
    """``POST /forgot-password``: a reset token and an email (None for unknown users)."""
    hours = mentorhub_settings().reset_hours
    with Session(engine()) as db, db.begin():
        user = db.scalars(select(User).where(User.email == email)).first()
        if user is None:
            return None
        token = _issue_token(db, user, "password_reset", timedelta(hours=hours))
        username = user.username
    return send_password_reset_email_task.submit(email=email, username=username, token=token)


def book_session(mentor_id: int, student_id: int, scheduled_at: datetime) -> MentorSession:
    """``POST /sessions``: store the session and schedule its reminder one hour before.

    The reminder is a job with ``eta``; conveyor holds a far-off job in the store
    (SCHEDULED) rather than in the broker, so it runs once even days ahead. A session
    starting within the hour is reminded right away.
    """
    with Session(engine(), expire_on_commit=False) as db, db.begin():
        mentor = db.get_one(User, mentor_id)
        student = db.get_one(User, student_id)
        session = MentorSession(
            mentor_id=mentor.id, student_id=student.id, scheduled_at=scheduled_at
        )
        db.add(session)
        db.flush()
        arguments = reminder_arguments(session, student, mentor)
    remind_at = scheduled_at - mentorhub_settings().reminder_before
    job = send_session_reminder_task.submit_with(
        kwargs=arguments, eta=remind_at if remind_at > utcnow() else None
    )
    with Session(engine(), expire_on_commit=False) as db, db.begin():
        stored = db.get_one(MentorSession, session.id)
        stored.reminder_job_id = job.id
    return stored


def cancel_session(session_id: int) -> None:
    """Cancel a session: its pending reminder then skips (it checks the status)."""
    with Session(engine()) as db, db.begin():
        db.get_one(MentorSession, session_id).status = "cancelled"
