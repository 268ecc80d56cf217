"""Structured job events with bound context; JSON in production; Sentry only when configured."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from pathlib import Path

from structlog.testing import capture_logs

from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task
from conveyor.testing import InlineConveyor, inline_settings
from tests.support.http import http_receiver
from tests.support.procs import run_python

BOUND = ("job_id", "task", "queue", "attempt")
_seen: set[str] = set()


@task(name="logtest.ok", queue="email")
def ok() -> int:
    return 1


@task(name="logtest.fail")
def fail() -> None:
    raise PermanentError("no")


@task(name="logtest.retry_once", retry=RetryPolicy(max_retries=2, base_delay=0, jitter=False))
def retry_once(key: str) -> int:
    if key not in _seen:
        _seen.add(key)
        raise TemporaryError("first run fails")
    return 2


def test_job_events_carry_job_id_task_queue_and_attempt(tmp_path: Path) -> None:
    c = InlineConveyor(inline_settings(data_dir=tmp_path))
    with capture_logs() as logs:
        done = c.submit("logtest.ok")
        failed = c.submit("logtest.fail")
        retried = c.submit("logtest.retry_once", uuid.uuid4().hex)
    by_job: dict[str, list[str]] = {}
    for entry in logs:
        if str(entry["event"]).startswith("job_"):
            assert all(key in entry for key in BOUND), entry
            by_job.setdefault(entry["job_id"], []).append(entry["event"])
    assert by_job[done.id] == ["job_submitted", "job_started", "job_succeeded"]
    assert by_job[failed.id] == ["job_submitted", "job_started", "job_failed"]
    assert by_job[retried.id] == [
        "job_submitted",
        "job_started",
        "job_retried",
        "job_started",
        "job_succeeded",
    ]
    started = [e for e in logs if e["event"] == "job_started" and e["job_id"] == retried.id]
    assert [e["attempt"] for e in started] == [1, 2]
    submitted = next(e for e in logs if e["event"] == "job_submitted" and e["job_id"] == done.id)
    assert (submitted["task"], submitted["queue"], submitted["attempt"]) == (
        "logtest.ok",
        "email",
        0,
    )


#: a process that submits one webhook job inline (to an address nothing listens on)
SUBMIT_ONE_WEBHOOK = (
    "from conveyor.cli.common import settings_or_exit\n"
    "from conveyor.testing import InlineConveyor, inline_settings\n"
    "settings_or_exit()\n"
    "c = InlineConveyor(inline_settings())\n"
    "c.submit('webhook.post', url='http://127.0.0.1:9/x', payload={})\n"
)


def test_production_logs_are_json_lines(tmp_path: Path) -> None:
    result = run_python(
        SUBMIT_ONE_WEBHOOK, CONVEYOR_ENV="production", CONVEYOR_DATA_DIR=str(tmp_path)
    )
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert "job_submitted" in events and "job_started" in events, result.stderr
    started = next(line for line in lines if line["event"] == "job_started")
    assert started["task"] == "webhook.post"
    assert started["queue"] == "notifications"
    assert started["attempt"] == 1
    assert started["level"] == "info"


def test_lines_below_the_log_level_are_dropped(tmp_path: Path) -> None:
    env = {"CONVEYOR_ENV": "production", "CONVEYOR_DATA_DIR": str(tmp_path)}
    quiet = run_python(SUBMIT_ONE_WEBHOOK, CONVEYOR_LOG_LEVEL="WARNING", **env)
    events = [json.loads(line)["event"] for line in quiet.stderr.splitlines() if line[:1] == "{"]
    assert "job_started" not in events and "job_submitted" not in events, quiet.stderr
    assert "job_retried" in events  # the unreachable URL: a warning still gets through


def test_sentry_is_not_imported_without_a_dsn(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from conveyor.cli.common import Env, settings_or_exit\n"
        "from conveyor.api import create_api\n"
        "env = Env(settings_or_exit())\n"
        "env.store.migrate()\n"
        "create_api(env.settings, env.store, env.submitter)\n"
        "print('sentry_sdk' in sys.modules)\n"
    )
    result = run_python(code, CONVEYOR_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_sentry_reports_when_a_dsn_is_set(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        dsn = f"http://publickey@127.0.0.1:{port}/42"
        code = (
            "import sys, sentry_sdk\n"
            "from conveyor.cli.common import settings_or_exit\n"
            "settings_or_exit()\n"
            "names = sorted(sentry_sdk.get_client().integrations)\n"
            "print(','.join(names))\n"
            "sentry_sdk.capture_message('conveyor-sentry-test')\n"
            "sentry_sdk.flush(5)\n"
        )
        result = run_python(code, CONVEYOR_DATA_DIR=str(tmp_path), CONVEYOR_SENTRY_DSN=dsn)
        assert result.returncode == 0, result.stderr
        integrations = result.stdout.strip().split(",")
        assert {"celery", "fastapi", "starlette"} <= set(integrations)
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        (request,) = receiver.requests
        assert request.path.startswith("/api/42/")
        body = request.body
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        assert b"conveyor-sentry-test" in body
