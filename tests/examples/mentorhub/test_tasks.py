"""MentorHub's tasks do what seed 004 describes, on PostgreSQL with aiosmtpd: verification
and reset emails, the session reminder held as a long delay and sent once one hour
before, the hourly sweep reminding each session once, token cleanup, daily stats."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from conveyor.delays import release_due
from conveyor.jobs import Job, JobState
from conveyor.local import use_submitter
from conveyor.publishing import Published
from conveyor.schedule_manager import declarations
from conveyor.task import registry
from conveyor.testing import InlineConveyor
from examples.mentorhub import service
from examples.mentorhub.config import BEAT_SCHEDULE
from examples.mentorhub.models import Course, DailyStats, MentorSession, Token, User, utcnow
from examples.mentorhub.tasks import remind_session
from tests.examples.mentorhub.conftest import Hub

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)


class RunInline:
    """What ``release_due`` publishes with: here the released job runs at once, inline."""

    def __init__(self, inline: InlineConveyor) -> None:
        self.inline = inline
        self.settings = inline.settings

    def dispatch(self, job: Job, producer: Any = None) -> None:
        self.inline.submitter.enqueue(job)

    def publish_many(self, jobs: Sequence[Job]) -> Published:
        for job in jobs:
            self.dispatch(job)
        return Published(sent=list(jobs))


def release(hub: Hub, now: datetime) -> int:
    return release_due(hub.inline.store, RunInline(hub.inline), now=now)  # type: ignore[arg-type]


def test_the_schedule_table_equals_the_seeds(hub: Hub) -> None:
    declared = {
        d.name: (d.spec.interval, d.spec.cron)
        for d in declarations(registry, hub.inline.settings)
        if d.name.startswith("mentorhub.")
    }
    assert declared == {
        "mentorhub.cleanup_expired_tokens": (86400.0, None),
        "mentorhub.generate_daily_stats": (86400.0, None),
        "mentorhub.send_session_reminders": (3600.0, None),
    }
    assert {name: entry["task"] for name, entry in BEAT_SCHEDULE.items()} == {
        "cleanup-expired-tokens-daily": "mentorhub.cleanup_expired_tokens",
        "generate-daily-stats": "mentorhub.generate_daily_stats",
        "send-session-reminders-hourly": "mentorhub.send_session_reminders",
    }


def test_verification_email_carries_a_stored_token(hub: Hub) -> None:
    hub.user("john_doe")
    hub.user("verified", is_verified=True)
    job = service.request_verification("john_doe@example.org")
    assert job is not None and job.state is JobState.SUCCEEDED, job and job.error
    with Session(hub.engine) as db:
        [token] = db.scalars(select(Token)).all()
    assert token.kind == "verification"
    assert abs(token.expires_at - (utcnow() + timedelta(hours=24))) < timedelta(minutes=5)
    [message] = hub.mailbox.messages
    assert message["To"] == "john_doe@example.org"
    assert message["Subject"] == "Confirm your email address"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"http://localhost:3000/verify-email?token={token.token}" in text
    assert "Hello john_doe" in text
    # nothing for verified or unknown users (and the API answers the same)
    assert service.request_verification("verified@example.org") is None
    assert service.request_verification("nobody@example.org") is None
    assert len(hub.mailbox.messages) == 1


def test_password_reset_email_links_to_the_reset_page(hub: Hub) -> None:
    hub.user("alice")
    job = service.request_password_reset("alice@example.org")
    assert job is not None and job.state is JobState.SUCCEEDED, job and job.error
    with Session(hub.engine) as db:
        [token] = db.scalars(select(Token)).all()
    assert token.kind == "password_reset"
    assert token.expires_at - utcnow() <= HOUR
    [message] = hub.mailbox.messages
    assert message["Subject"] == "Reset your password"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"/reset-password?token={token.token}" in text
    assert service.request_password_reset("nobody@example.org") is None


def test_session_reminder_waits_days_ahead_and_fires_once_an_hour_before(hub: Hub) -> None:
    mentor = hub.user("bob", "mentor", full_name="Bob Smith")
    student = hub.user("alice")
    start = (utcnow() + timedelta(days=3)).replace(second=0, microsecond=0)
    with use_submitter(hub.held):
        booked = service.book_session(mentor.id, student.id, start)
    assert booked.reminder_job_id is not None
    job = hub.inline.store.get_job(booked.reminder_job_id)
    assert job is not None
    # held in the store as a long delay, not in the broker
    assert job.state is JobState.SCHEDULED
    assert job.scheduled_for == start - HOUR
    assert job.kwargs["session_date"] == start.strftime("%d.%m.%Y %H:%M")

    assert release(hub, now=start - HOUR - timedelta(seconds=1)) == 0
    assert hub.mailbox.messages == []
    assert release(hub, now=start - HOUR + timedelta(seconds=1)) == 1
    [message] = hub.mailbox.messages
    assert message["To"] == "alice@example.org"
    assert message["Subject"] == f"Reminder: session with Bob Smith on {start:%d.%m.%Y %H:%M}"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"http://localhost:3000/sessions/{booked.id}" in text
    done = hub.inline.store.get_job(job.id)
    assert done is not None and done.state is JobState.SUCCEEDED
    assert hub.reload(MentorSession, booked.id).reminded_at is not None
    # released once: later passes find nothing, and a duplicate reminder job sends nothing
    assert release(hub, now=start) == 0
    again = hub.inline.submit("mentorhub.send_session_reminder_task", **done.kwargs)
    assert again.state is JobState.SUCCEEDED
    assert again.result["skipped"] == "already_reminded"
    assert len(hub.mailbox.messages) == 1


def test_a_cancelled_sessions_reminder_sends_nothing(hub: Hub) -> None:
    mentor, student = hub.user("carol", "mentor"), hub.user("dave")
    start = (utcnow() + timedelta(days=5)).replace(second=0, microsecond=0)
    with use_submitter(hub.held):
        booked = service.book_session(mentor.id, student.id, start)
    service.cancel_session(booked.id)
    release(hub, now=start - HOUR + timedelta(seconds=1))
    job = hub.inline.store.get_job(booked.reminder_job_id or "")
    assert job is not None and job.state is JobState.SUCCEEDED
    assert job.result["skipped"] == "cancelled"
    assert hub.mailbox.messages == []


def test_hourly_sweep_reminds_each_session_starting_within_the_hour_once(hub: Hub) -> None:
    mentor = hub.user("erin", "mentor", full_name="Erin Mentor")
    students = [hub.user(f"s{n}") for n in range(6)]
    now = utcnow()
    soon = hub.session(mentor, students[0], now + timedelta(minutes=20))
    edge = hub.session(mentor, students[1], now + timedelta(minutes=58))
    hub.session(mentor, students[2], now + timedelta(hours=2))  # not yet
    hub.session(mentor, students[3], now + timedelta(minutes=30), status="cancelled")
    hub.session(mentor, students[4], now - timedelta(minutes=10))  # already started
    hub.session(mentor, students[5], now + timedelta(minutes=40), reminded_at=now)

    first = hub.inline.submit("mentorhub.send_session_reminders")
    second = hub.inline.submit("mentorhub.send_session_reminders")

    assert first.state is JobState.SUCCEEDED, first.error
    assert first.result == {"reminded": [soon.id, edge.id], "skipped": []}
    assert second.result == {"reminded": [], "skipped": []}
    assert sorted(rcpts[0] for _, rcpts in hub.mailbox.envelopes) == [
        "s0@example.org",
        "s1@example.org",
    ]


def test_sweep_and_eta_reminder_together_still_send_once(hub: Hub) -> None:
    mentor, student = hub.user("frank", "mentor"), hub.user("gina")
    # starts within the hour: booking reminds at once (inline here) ...
    booked = service.book_session(mentor.id, student.id, utcnow() + timedelta(minutes=30))
    assert len(hub.mailbox.messages) == 1
    # ... and the hourly sweep does not remind it again
    sweep = hub.inline.submit("mentorhub.send_session_reminders")
    assert sweep.result == {"reminded": [], "skipped": []}
    assert hub.reload(MentorSession, booked.id).reminded_at is not None
    assert len(hub.mailbox.messages) == 1


def test_cleanup_deletes_expired_tokens_and_keeps_live_ones(hub: Hub) -> None:
    user = hub.user("henry")
    now = utcnow()
    hub.add(
        Token(
            token="expired-minute",
            kind="verification",
            user_id=user.id,
            expires_at=now - timedelta(minutes=1),
        ),
        Token(
            token="expired-days",
            kind="password_reset",
            user_id=user.id,
            expires_at=now - timedelta(days=2),
        ),
        Token(token="live-hour", kind="password_reset", user_id=user.id, expires_at=now + HOUR),
        Token(
            token="live-day",
            kind="verification",
            user_id=user.id,
            expires_at=now + timedelta(hours=23),
        ),
    )
    job = hub.inline.submit("mentorhub.cleanup_expired_tokens")
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result == {"deleted": 2}
    with Session(hub.engine) as db:
        left = sorted(db.scalars(select(Token.token)).all())
    assert left == ["live-day", "live-hour"]
    assert hub.inline.submit("mentorhub.cleanup_expired_tokens").result == {"deleted": 0}


def test_daily_stats_count_one_utc_day_and_replace_on_rerun(hub: Hub) -> None:
    yesterday = utcnow().date() - timedelta(days=1)
    midnight = datetime.combine(yesterday, datetime.min.time(), tzinfo=UTC)
    mentor = hub.user("ivan", "mentor", created_at=midnight - timedelta(days=3))
    hub.user("first", created_at=midnight)  # the day's first instant counts
    hub.user("last", created_at=midnight + timedelta(hours=23, minutes=59, seconds=59))
    hub.user("today", created_at=midnight + timedelta(days=1))  # the next day does not
    hub.user("before", created_at=midnight - timedelta(seconds=1))
    student = hub.user("student", created_at=midnight - timedelta(days=5))
    hub.session(mentor, student, utcnow() + timedelta(days=1), created_at=midnight + HOUR)
    hub.session(mentor, student, utcnow() + timedelta(days=2), created_at=midnight - HOUR)
    hub.add(
        Course(title="Python", mentor_id=mentor.id, created_at=midnight + timedelta(hours=5)),
        Course(title="SQL", mentor_id=mentor.id, created_at=midnight + timedelta(hours=6)),
        Course(title="Old", mentor_id=mentor.id, created_at=midnight - timedelta(days=2)),
    )
    job = hub.inline.submit("mentorhub.generate_daily_stats")  # default: yesterday (UTC)
    assert job.state is JobState.SUCCEEDED, job.error
    expected = {"day": yesterday.isoformat(), "new_users": 2, "new_sessions": 1, "new_courses": 2}
    assert job.result == expected
    hub.user("late", created_at=midnight + timedelta(hours=12))
    rerun = hub.inline.submit("mentorhub.generate_daily_stats", day=yesterday.isoformat())
    assert rerun.result["new_users"] == 3
    with Session(hub.engine) as db:
        [row] = db.scalars(select(DailyStats)).all()
    assert (row.day, row.new_users, row.new_sessions, row.new_courses) == (yesterday, 3, 1, 2)
    other = hub.inline.submit("mentorhub.generate_daily_stats", day=date(2020, 1, 1).isoformat())
    assert other.result["new_users"] == 0


def test_user_rows_keep_aware_utc_times(hub: Hub) -> None:
    user = hub.user("zoe")
    stored = hub.reload(User, user.id)
    assert stored.created_at.tzinfo is UTC


def test_two_workers_reminding_the_same_session_at_once_send_one_email(hub: Hub) -> None:
    """The row lock makes the second wait for the first and then skip (PostgreSQL)."""
    mentor, student = hub.user("kate", "mentor"), hub.user("leo")
    booked = hub.session(mentor, student, utcnow() + timedelta(minutes=30))
    sent: list[str] = []
    entered = threading.Barrier(2)

    def send() -> dict[str, Any]:
        sent.append(threading.current_thread().name)
        time.sleep(0.5)  # still sending while the other worker tries
        return {"sent": 1}

    def worker() -> dict[str, Any]:
        entered.wait(timeout=10)
        return remind_session(booked.id, send)

    with ThreadPoolExecutor(2) as pool:
        outcomes = [f.result(timeout=60) for f in [pool.submit(worker), pool.submit(worker)]]
    assert len(sent) == 1
    assert sorted(str(o.get("skipped", "")) for o in outcomes) == ["", "already_reminded"]
