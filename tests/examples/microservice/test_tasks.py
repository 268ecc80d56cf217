"""The microservice's tasks do what seed 003 describes, on PostgreSQL with real local
stand-ins: an HTTP receiver as the main backend, aiosmtpd as the mail server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from conveyor.catalog.database import engine_for
from conveyor.jobs import JobState
from conveyor.schedule_manager import declarations
from conveyor.task import registry
from examples.microservice.config import BEAT_SCHEDULE, QUEUES
from examples.microservice.models import ImportedRecord, UserData
from tests.examples.microservice.conftest import Service
from tests.support.catalog import Configure

pytestmark = pytest.mark.integration

#: seed 003, "Available Tasks" and "Queue Configuration"
SEED_TASKS = {
    "send_email_task": "email",
    "send_bulk_email_task": "email",
    "send_notification_to_backend": "email",
    "send_push_notification_task": "notifications",
    "send_sms_task": "notifications",
    "process_notification_queue_task": "notifications",
    "process_user_data_task": "data_processing",
    "generate_report_task": "data_processing",
    "batch_data_import_task": "data_processing",
    "update_exchange_rates_task": "data_processing",
    "send_daily_digest_task": "email",
    "cleanup_temp_files_task": "cleanup",
    "cleanup_old_logs_task": "cleanup",
    "system_health_check_task": "cleanup",
    "daily_maintenance_task": "cleanup",
}

#: seed 003, ``app.conf.beat_schedule``: entry → (task, cron, queue)
SEED_BEAT = {
    "daily-db-backup": ("daily_maintenance_task", "0 2 * * *", "cleanup"),
    "update-exchange-rates-hourly": ("update_exchange_rates_task", "0 * * * *", "data_processing"),
    "send-daily-email-digest": ("send_daily_digest_task", "0 8 * * *", "email"),
    "system-health-check": ("system_health_check_task", "*/5 * * * *", "cleanup"),
}


def test_the_seed_tasks_are_registered_on_the_seed_queues(service: Service) -> None:
    ours = {s.name: s.queue for s in registry if s.name.startswith("microservice.")}
    assert ours == {f"microservice.{name}": queue for name, queue in SEED_TASKS.items()}
    assert set(ours.values()) == set(QUEUES)


def test_the_schedule_table_equals_the_seeds(service: Service) -> None:
    declared = {
        d.name: (d.spec.cron, d.spec.interval, d.spec.timezone)
        for d in declarations(registry, service.inline.settings)
        if d.name.startswith("microservice.")
    }
    expected = {f"microservice.{task}": (cron, None, "UTC") for task, cron, _ in SEED_BEAT.values()}
    assert declared == expected
    for entry, (task_name, _, queue) in SEED_BEAT.items():
        assert BEAT_SCHEDULE[entry]["task"] == f"microservice.{task_name}"
        assert BEAT_SCHEDULE[entry]["options"] == {"queue": queue}
        assert registry.get(f"microservice.{task_name}").queue == queue


def test_periodic_jobs_call_the_backends_internal_endpoints(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MICROSERVICE_BACKEND_API_KEY", "internal-secret")
    rates = service.inline.submit("microservice.update_exchange_rates_task")
    digest = service.inline.submit("microservice.send_daily_digest_task")
    assert rates.state is JobState.SUCCEEDED, rates.error
    assert rates.result == "exchange rates update scheduled"
    assert digest.result == "daily digest triggered"
    [rate_call] = service.backend.to("/internal/exchange-rates/update")
    [digest_call] = service.backend.to("/internal/reports/daily-digest/trigger")
    assert rate_call.method == digest_call.method == "POST"
    assert rate_call.headers["Authorization"] == "Bearer internal-secret"
    # the job id is the idempotency key, so a retried call can be recognised by the backend
    assert rate_call.headers["Idempotency-Key"] == rates.id


def test_a_failing_backend_is_retried_until_it_answers(service: Service) -> None:
    service.backend.responses["/internal/exchange-rates/update"] = [(503, "{}"), (200, "{}")]
    job = service.inline.submit("microservice.update_exchange_rates_task")
    assert job.state is JobState.SUCCEEDED
    assert job.attempts == 2
    assert len(service.backend.to("/internal/exchange-rates/update")) == 2


def test_health_check_reports_each_service_without_failing(service: Service) -> None:
    service.backend.responses["/health/search-index"] = [(503, '{"ok": false}')]
    job = service.inline.submit("microservice.system_health_check_task")
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result["services"] == {
        "/health/redis": 200,
        "/health/rabbitmq": 200,
        "/health/postgres": 200,
        "/health/search-index": 503,
    }
    assert job.result["healthy"] is False
    assert [r.method for r in service.backend.requests] == ["GET"] * 4


def test_notify_backend_posts_the_event(service: Service) -> None:
    job = service.inline.submit(
        "microservice.send_notification_to_backend", event="user.signed_up", payload={"id": 7}
    )
    assert job.state is JobState.SUCCEEDED, job.error
    [call] = service.backend.to("/internal/notifications")
    assert call.json() == {"event": "user.signed_up", "payload": {"id": 7}}


def test_email_tasks_deliver_over_smtp(service: Service) -> None:
    one = service.inline.submit(
        "microservice.send_email_task",
        to_email="user@example.com",
        subject="Welcome!",
        body="Welcome to our service!",
    )
    assert one.state is JobState.SUCCEEDED, one.error
    bulk = service.inline.submit(
        "microservice.send_bulk_email_task",
        recipients=["a@example.com", "b@example.com", "c@example.com"],
        subject="News",
        body="Hello",
        per_second=1000,
    )
    assert bulk.state is JobState.SUCCEEDED, bulk.error
    assert bulk.result["sent"] == 3
    assert [m["Subject"] for m in service.mailbox.messages] == ["Welcome!", "News", "News", "News"]
    assert [rcpts for _, rcpts in service.mailbox.envelopes] == [
        ["user@example.com"],
        ["a@example.com"],
        ["b@example.com"],
        ["c@example.com"],
    ]
    assert service.mailbox.messages[0].get_content().strip() == "Welcome to our service!"


def test_bad_arguments_are_refused_before_anything_runs(service: Service) -> None:
    with pytest.raises(Exception, match="to_email"):
        service.inline.submit("microservice.send_email_task", to_email="nope", subject="x", body="")
    assert service.mailbox.messages == []


def test_push_and_sms_go_through_the_catalog_providers(
    service: Service, configure: Configure
) -> None:
    configure(
        sms_api_url=service.backend.url,
        sms_account_sid="AC123",
        sms_auth_token="sms-token",
        sms_from="+15550000000",
        fcm_api_url=service.backend.url,
        fcm_project_id="demo",
        fcm_access_token="fcm-token",
    )
    service.backend.responses["/2010-04-01/Accounts/AC123/Messages.json"] = [
        (201, '{"sid": "SM1", "status": "queued"}')
    ]
    service.backend.responses["/v1/projects/demo/messages:send"] = [
        (200, '{"name": "projects/demo/messages/1"}')
    ]
    sms_job = service.inline.submit(
        "microservice.send_sms_task", phone_number="+420123456789", message="Code 1234"
    )
    push_job = service.inline.submit(
        "microservice.send_push_notification_task",
        user_tokens=["fcm_token_1", "fcm_token_2"],
        title="New Message",
        body="You have a new message",
    )
    assert sms_job.state is JobState.SUCCEEDED, sms_job.error
    assert push_job.state is JobState.SUCCEEDED, push_job.error
    [sms_call] = service.backend.to("/2010-04-01/Accounts/AC123/Messages.json")
    assert b"Body=Code+1234" in sms_call.body
    pushes = service.backend.to("/v1/projects/demo/messages:send")
    assert sorted(p.json()["message"]["token"] for p in pushes) == ["fcm_token_1", "fcm_token_2"]
    assert {p.headers["Authorization"] for p in pushes} == {"Bearer fcm-token"}


def _rows(model: type[UserData] | type[ImportedRecord], url: str) -> int:
    with Session(engine_for(url)) as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_process_user_data_keeps_one_row_per_user_and_kind(
    service: Service, database_url: str
) -> None:
    first = service.inline.submit(
        "microservice.process_user_data_task",
        user_id=123,
        data_type="profile_update",
        data={"name": "John Doe"},
    )
    again = service.inline.submit(
        "microservice.process_user_data_task",
        user_id=123,
        data_type="profile_update",
        data={"city": "Kyiv"},
    )
    assert first.result["created"] is True and first.result["version"] == 1
    assert again.result["created"] is False and again.result["version"] == 2
    with Session(engine_for(database_url)) as db:
        [row] = db.scalars(select(UserData).where(UserData.user_id == 123)).all()
    assert row.data == {"name": "John Doe", "city": "Kyiv"}


def test_generate_report_writes_the_user_data_summary(service: Service, tmp_path: Path) -> None:
    for user_id, kind in ((1, "preferences"), (2, "preferences"), (3, "activity")):
        service.inline.submit(
            "microservice.process_user_data_task", user_id=user_id, data_type=kind, data={}
        )
    job = service.inline.submit("microservice.generate_report_task", format="csv")
    assert job.state is JobState.SUCCEEDED, job.error
    path = Path(job.result["path"])
    assert path.parent == (tmp_path / "reports").resolve()
    lines = path.read_text().splitlines()
    assert lines[0] == "data_type,users"
    assert "activity,1" in lines and "preferences,2" in lines


def test_batch_import_loads_the_csv_once_and_reports_bad_rows(
    service: Service, database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "records.csv"
    source.write_text(
        "email,name,amount\n"
        "ann@example.com,Ann,10.50\n"
        "bob@example.com,Bob,7\n"
        "bad@example.com,Bad,not-a-number\n"
    )
    before = _rows(ImportedRecord, database_url)
    first = service.inline.submit("microservice.batch_data_import_task", source=str(source))
    assert first.state is JobState.SUCCEEDED, first.error
    assert (first.result["inserted"], first.result["rejected"]) == (2, 1)
    second = service.inline.submit("microservice.batch_data_import_task", source=str(source))
    assert second.result["inserted"] == 0  # emails are unique: nothing imported twice
    assert _rows(ImportedRecord, database_url) == before + 2


def _aged(path: Path, days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp))
    return path


def test_cleanup_tasks_delete_only_old_files(service: Service) -> None:
    old_tmp = _aged(service.temp_dir / "a" / "upload.tmp", 2)
    new_tmp = _aged(service.temp_dir / "fresh.tmp", 0)
    old_log = _aged(service.logs_dir / "app.log.3", 40)
    new_log = _aged(service.logs_dir / "app.log", 1)
    kept = _aged(service.logs_dir / "notes.txt", 90)  # not a log file
    temp = service.inline.submit("microservice.cleanup_temp_files_task")
    logs = service.inline.submit("microservice.cleanup_old_logs_task")
    assert temp.result["files"] == ["a/upload.tmp"]
    assert logs.result["files"] == ["app.log.3"]
    assert not old_tmp.exists() and not old_log.exists()
    assert new_tmp.exists() and new_log.exists() and kept.exists()


def test_daily_maintenance_backs_up_and_cleans(service: Service, tmp_path: Path) -> None:
    old = _aged(service.temp_dir / "old.tmp", 3)
    job = service.inline.submit("microservice.daily_maintenance_task", keep_backups=2)
    assert job.state is JobState.SUCCEEDED, job.error
    backup = Path(job.result["backup"]["path"])
    assert backup.is_file() and backup.stat().st_size > 0
    assert backup.parent == (tmp_path / "backups").resolve()
    assert job.result["temp_files"]["files"] == ["old.tmp"]
    assert not old.exists()


def test_notification_queue_becomes_one_job_per_notification(service: Service) -> None:
    job = service.inline.submit(
        "microservice.process_notification_queue_task",
        notifications=[
            {"channel": "email", "to": "a@example.com", "title": "Hi", "body": "Hello"},
            {"channel": "sms", "to": "+420123456789", "body": "Code 1"},
            {"channel": "push", "to": ["tok-1", "tok-2"], "title": "Ping"},
            {"channel": "email", "to": "b@example.com", "title": "Hi", "body": "Hello"},
        ],
    )
    assert job.state is JobState.SUCCEEDED, job.error
    jobs = job.result["jobs"]
    assert {name: len(ids) for name, ids in jobs.items()} == {
        "send_email_task": 2,
        "send_sms_task": 1,
        "send_push_notification_task": 1,
    }
    store = service.inline.store
    emails = [store.get_job(i) for i in jobs["send_email_task"]]
    assert [j.kwargs["to_email"] for j in emails if j] == ["a@example.com", "b@example.com"]
    [push] = [store.get_job(i) for i in jobs["send_push_notification_task"]]
    assert push is not None and push.kwargs["user_tokens"] == ["tok-1", "tok-2"]
    assert push.queue == "notifications"
