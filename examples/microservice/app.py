"""``conveyor up --example microservice``: the seed microservice with a local backend stand-in."""

from __future__ import annotations

import os

from sqlalchemy import create_engine

from conveyor.example import Example
from conveyor.settings import Settings
from examples.microservice import synthetic
from examples.microservice.config import QUEUES, microservice_settings
from examples.microservice.standin import standin_port

_PORT = standin_port()
_MAIL_PORT = int(os.environ.get("MICROSERVICE_MAILSINK_PORT", "8025"))
_SETTINGS = microservice_settings()


def prepare(settings: Settings) -> None:
    """Create the ``microservice_*`` tables and fill them with SYNTHETIC data."""
    bind = create_engine(settings.effective_database_url)
    try:
        synthetic.prepare(bind, microservice_settings(), settings.data_dir)
    finally:
        bind.dispose()


EXAMPLE = Example(
    name="microservice",
    title="the autonomous Celery microservice (seed 003): email, notifications, data, cleanup",
    imports=("examples.microservice.tasks",),
    prepare=prepare,
    environment={
        # the periodic jobs call the local stand-in, not a real backend
        "MICROSERVICE_BACKEND_URL": f"http://127.0.0.1:{_PORT}",
        # the cleanup tasks may delete only inside these folders
        "CONVEYOR_CLEAN_ROOTS": f"{_SETTINGS.temp_dir},{_SETTINGS.logs_dir}",
        # emails go to the local mail sink, which prints them and delivers nothing
        "CONVEYOR_SMTP_HOST": "127.0.0.1",
        "CONVEYOR_SMTP_PORT": str(_MAIL_PORT),
        "CONVEYOR_SMTP_FROM": "microservice@example.invalid",
    },
    processes={
        "backend-standin": ("-m", "examples.microservice.standin", "--port", str(_PORT)),
        "mail-sink": ("-m", "examples.mailsink", "--port", str(_MAIL_PORT)),
    },
    notes=(
        f"backend STAND-IN on http://127.0.0.1:{_PORT} answers the internal endpoints "
        "(it does no real work)",
        f"queues: {', '.join(QUEUES)}; schedules: daily_maintenance_task 02:00, "
        "update_exchange_rates_task hourly, send_daily_digest_task 08:00, "
        "system_health_check_task every 5 min",
        'try: curl -H "Authorization: Bearer $(cat var/dev-api-key)" '
        "-H 'Content-Type: application/json' "
        '-d \'{"task": "microservice.system_health_check_task"}\' {api}/api/v1/jobs',
        f"mail sink STAND-IN on 127.0.0.1:{_MAIL_PORT} prints every email and delivers nothing",
        "SMS and push jobs need CONVEYOR_SMS_* / CONVEYOR_FCM_* (see "
        "examples/microservice/README.md); without them they end DEAD at once with a clear error",
    ),
)
