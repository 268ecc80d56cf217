"""``conveyor up --example mentorhub``: MentorHub's tasks with synthetic users and sessions."""

from __future__ import annotations

import os

from sqlalchemy import create_engine

from conveyor.engine import create_app, import_task_modules
from conveyor.example import Example
from conveyor.local import use_submitter
from conveyor.settings import Settings
from conveyor.store import open_store
from conveyor.submit import Submitter
from examples.mentorhub import service, synthetic

_MAIL_PORT = int(os.environ.get("MENTORHUB_MAILSINK_PORT", "8025"))


def prepare(settings: Settings) -> None:
    """Create the ``mentorhub_*`` tables, fill them with SYNTHETIC data and book the
    synthetic sessions (each schedules its reminder one hour before it starts)."""
    bind = create_engine(settings.effective_database_url)
    try:
        bookings = synthetic.prepare(bind)
    finally:
        bind.dispose()
    if not bookings:
        return
    import_task_modules(settings)
    store = open_store(settings)
    try:
        with use_submitter(Submitter(settings, store, create_app(settings))):
            for booking in bookings:
                service.book_session(*booking)
    finally:
        store.close()


EXAMPLE = Example(
    name="mentorhub",
    title="MentorHub (seed 004): verification/reset emails, session reminders, daily stats",
    imports=("examples.mentorhub.tasks",),
    prepare=prepare,
    environment={
        # emails go to the local mail sink, which prints them and delivers nothing
        "CONVEYOR_SMTP_HOST": "127.0.0.1",
        "CONVEYOR_SMTP_PORT": str(_MAIL_PORT),
        "CONVEYOR_SMTP_FROM": "mentorhub@example.invalid",
    },
    processes={"mail-sink": ("-m", "examples.mailsink", "--port", str(_MAIL_PORT))},
    notes=(
        f"mail sink STAND-IN on 127.0.0.1:{_MAIL_PORT} prints every email and delivers nothing",
        "two synthetic sessions start within the hour: their reminders run right away; "
        "four are days ahead: their reminders wait as SCHEDULED jobs (see the Jobs page)",
        "schedules: cleanup_expired_tokens and generate_daily_stats daily, "
        "send_session_reminders hourly (first runs one interval after start)",
        'try: curl -H "Authorization: Bearer $(cat var/dev-api-key)" '
        "-H 'Content-Type: application/json' "
        '-d \'{"task": "mentorhub.generate_daily_stats"}\' {api}/api/v1/jobs',
    ),
)
