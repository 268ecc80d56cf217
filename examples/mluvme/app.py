"""What ``conveyor up --example mluvme`` runs: the tasks, the seed's configuration, the data."""

from __future__ import annotations

import json

from conveyor.example import Example
from conveyor.settings import Settings
from examples.mluvme.db import create_tables, session
from examples.mluvme.synthetic import generate, has_synthetic_data

NAME = "mluvme"

#: seed 000 "Configuration": its queues and the values of ``celery_app.conf.update``
ENVIRONMENT: dict[str, str] = {
    "CONVEYOR_QUEUES": "default,analytics,notifications,maintenance",
    "CONVEYOR_TASK_TIME_LIMIT": "300",
    "CONVEYOR_TASK_SOFT_TIME_LIMIT": "240",
    "CONVEYOR_WORKER_PREFETCH_MULTIPLIER": "4",
    "CONVEYOR_WORKER_MAX_TASKS_PER_CHILD": "1000",
    "CONVEYOR_RESULT_EXPIRES": "3600",
    # SYNTHETIC demo traffic (not in the seed): see examples/mluvme/demo.py
    "CONVEYOR_SCHEDULES": json.dumps(
        {"mluvme.demo_activity": {"task": "mluvme.simulate_activity", "interval": 15}}
    ),
}


def prepare(settings: Settings) -> None:
    """Create the ``mluvme_*`` tables and, once, the synthetic users and their messages."""
    create_tables(settings)
    with session(settings) as db:
        if not has_synthetic_data(db):
            generate(db)


EXAMPLE = Example(
    name=NAME,
    title="Mluv.Me: a language-learning Telegram bot (streaks, reminders, reports; seeds 000-002)",
    imports=("examples.mluvme.tasks",),
    prepare=prepare,
    environment=ENVIRONMENT,
    notes=(
        "SYNTHETIC demo traffic: mluvme.simulate_activity every 15 s (messages from "
        "synthetic-user-N, with their follow-up jobs); Telegram runs dry without a bot token",
        "try the 18:00 reminders now (one job per active user, 2 s apart): "
        'curl -X POST -H "Authorization: Bearer $(cat var/dev-api-key)" '
        "{api}/api/v1/schedules/mluvme.send_daily_reminders/run",
    ),
)
