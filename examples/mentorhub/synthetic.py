"""SYNTHETIC data for ``conveyor up --example mentorhub`` — generated, not real people.

Mentors and students (``@example.invalid`` addresses) who joined over the last
week, courses, verification/reset tokens (some expired), and sessions: two start
within the hour (the hourly sweep reminds them), the others days ahead (their
reminders wait in the job store as SCHEDULED jobs). Only fills empty tables.
"""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from examples.mentorhub.models import Course, Token, User, create_tables, utcnow


class Booking(NamedTuple):
    mentor_id: int
    student_id: int
    scheduled_at: datetime


MENTORS = ("Bob Smith", "Olena Kovalenko", "Petr Novak", "Maria Garcia")
STUDENTS = 16
TOPICS = ("Python basics", "SQL for analysts", "System design", "Career chat", "FastAPI", "Git")


def _users(db: Session, rng: random.Random) -> tuple[list[User], list[User]]:
    now = utcnow()
    mentors = [
        User(
            email=f"mentor{n}@example.invalid",
            username=f"mentor{n}",
            full_name=name,
            role="mentor",
            is_verified=True,
            created_at=now - timedelta(days=rng.randint(8, 30)),
        )
        for n, name in enumerate(MENTORS, start=1)
    ]
    students = [
        User(
            email=f"student{n}@example.invalid",
            username=f"student{n}",
            full_name=f"Synthetic Student {n}",
            role="student",
            is_verified=rng.random() < 0.6,
            created_at=now - timedelta(days=rng.randint(0, 6), hours=rng.randint(0, 23)),
        )
        for n in range(1, STUDENTS + 1)
    ]
    db.add_all([*mentors, *students])
    db.flush()
    return mentors, students


def _rest(db: Session, rng: random.Random, mentors: list[User], students: list[User]) -> None:
    now = utcnow()
    db.add_all(
        Course(
            title=topic,
            mentor_id=rng.choice(mentors).id,
            created_at=now - timedelta(days=rng.randint(0, 6)),
        )
        for topic in TOPICS
    )
    for n, student in enumerate(students):
        expired = n % 3 == 0
        delta = timedelta(hours=-rng.randint(1, 48)) if expired else timedelta(hours=23)
        kind = "verification" if n % 2 else "password_reset"
        db.add(
            Token(
                token=secrets.token_urlsafe(24),
                kind=kind,
                user_id=student.id,
                expires_at=now + delta,
            )
        )


def session_plan(rng: random.Random, mentors: list[User], students: list[User]) -> list[Booking]:
    """Sessions to book: two within the hour, four days ahead."""
    now = utcnow()
    starts = [timedelta(minutes=25), timedelta(minutes=50)]
    starts += [timedelta(days=d, hours=h) for d, h in ((1, 3), (2, 5), (4, 1), (6, 7))]
    return [
        Booking(rng.choice(mentors).id, rng.choice(students).id, now + offset) for offset in starts
    ]


def prepare(bind: Engine, seed: int = 4) -> list[Booking]:
    """Create the tables and fill them if there are no users yet; returns the sessions
    to book (through ``service.book_session``, which schedules their reminders)."""
    rng = random.Random(seed)
    create_tables(bind)
    with Session(bind) as db, db.begin():
        if db.scalar(select(func.count()).select_from(User)):
            return []
        mentors, students = _users(db, rng)
        _rest(db, rng, mentors, students)
        return session_plan(rng, mentors, students)
