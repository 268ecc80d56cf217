"""The dashboard's operations pages over HTTP: job actions (cancel, run now), job history,
dead letters, schedules, queues and workers — CSRF, read-only refusal and bad input."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor import inspection
from conveyor.dashboard import queues as queues_page
from conveyor.gate import Gate
from conveyor.hooks.base import RunContext
from conveyor.hooks.gate import StoreGateHook, is_stale
from conveyor.inspection import WorkerInfo
from conveyor.jobs import Job, JobEvent, JobState, utcnow
from conveyor.schedule_manager import ScheduleManager
from conveyor.schedules import ScheduleSpec
from conveyor.store.base import Failure
from conveyor.store.reliability import DeadLetterFilter
from tests.unit.test_dashboard import Dash, csrf_in, make_settings


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dash]:
    d = Dash(make_settings(tmp_path, queues=["default", "mail"], inspect_timeout=0.2))
    with d.client:
        yield d


@pytest.fixture
def writer(dash: Dash) -> Dash:
    dash.login_key(dash.write_key)
    return dash


@pytest.fixture
def reader(dash: Dash) -> Dash:
    dash.login_key(dash.read_key)
    return dash


def post(dash: Dash, path: str, page: str, **form: str) -> Any:
    token = csrf_in(dash.client.get(page).text)
    return dash.client.post(path, data={"csrf_token": token, **form}, follow_redirects=False)


def dead_job(dash: Dash, task: str = "dashtest.add", attempts: int = 2, **values: Any) -> Job:
    """A job that failed ``attempts`` times and died (so it has a dead-letter entry)."""
    job = dash.add_job(task=task, kwargs=values.pop("kwargs", {"x": 1}), **values)
    for attempt in range(1, attempts + 1):
        dash.store.mark_started(job.id, attempt, "worker-1")
        failure = Failure(
            f"boom {attempt}", "ValueError", f"Traceback (attempt {attempt})", reason="error"
        )
        if attempt < attempts:
            dash.store.mark_retrying(job.id, attempt, failure)
        else:
            died = Failure(
                "mailbox unavailable", "SMTPError", "Traceback (last)", reason="exhausted"
            )
            dash.store.mark_dead(job.id, attempt, died)
    found = dash.store.get_job(job.id)
    assert found is not None and found.state is JobState.DEAD
    return found


def state_of(dash: Dash, job_id: str) -> JobState:
    found = dash.store.get_job(job_id)
    assert found is not None
    return found.state


# -- job detail: history and actions ------------------------------------------------


def test_job_page_shows_every_attempt_timeline_progress_and_dead_letter(writer: Dash) -> None:
    job = dead_job(writer)
    page = writer.client.get(f"/dashboard/jobs/{job.id}").text
    for text in ("Attempt 1: RETRYING", "Attempt 2: DEAD", "(exhausted)", "boom 1"):
        assert text in page
    assert "Traceback (attempt 1)" in page and "Traceback (last)" in page
    assert "Attempt 1 started on worker-1" in page
    assert f'href="/dashboard/dead-letters/{job.id}"' in page
    running = writer.add_job(state=JobState.QUEUED)
    writer.store.mark_started(running.id, 1, "w2")
    writer.store.apply_events([JobEvent.progress_report(running.id, 3, 4, "resizing")])
    page = writer.client.get(f"/dashboard/jobs/{running.id}").text
    assert 'value="75"' in page and "3 of 4" in page and "resizing" in page


def test_cancel_a_queued_job(writer: Dash) -> None:
    job = writer.submit(1)
    page = writer.client.get(f"/dashboard/jobs/{job.id}").text
    assert 'data-action="cancel"' in page and 'data-action="terminate"' not in page
    response = post(writer, f"/dashboard/jobs/{job.id}/actions/cancel", f"/dashboard/jobs/{job.id}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/dashboard/jobs/{job.id}?done=cancelled"
    assert state_of(writer, job.id) is JobState.CANCELLED
    assert "was cancelled" in writer.client.get(response.headers["location"]).text
    again = post(writer, f"/dashboard/jobs/{job.id}/actions/cancel", f"/dashboard/jobs/{job.id}")
    assert again.status_code == 409


def test_cancel_without_csrf_token_changes_nothing(writer: Dash) -> None:
    job = writer.submit(1)
    response = writer.client.post(
        f"/dashboard/jobs/{job.id}/actions/cancel", data={}, follow_redirects=False
    )
    assert response.status_code == 403
    assert state_of(writer, job.id) is JobState.QUEUED


def test_a_running_job_is_cancelled_only_by_terminate(
    writer: Dash, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked: list[tuple[str, bool]] = []
    monkeypatch.setattr(
        writer.submitter.app.control,
        "revoke",
        lambda job_id, terminate=False, signal=None: revoked.append((job_id, terminate)),
    )
    job = writer.submit(1)
    writer.store.mark_started(job.id, 1, "w1")
    page = writer.client.get(f"/dashboard/jobs/{job.id}").text
    assert 'data-action="terminate"' in page and 'data-action="cancel"' not in page
    url = f"/dashboard/jobs/{job.id}/actions/"
    assert post(writer, url + "cancel", f"/dashboard/jobs/{job.id}").status_code == 409
    assert post(writer, url + "terminate", f"/dashboard/jobs/{job.id}").status_code == 303
    assert state_of(writer, job.id) is JobState.CANCELLED
    assert revoked == [(job.id, True)]


def test_run_now_releases_a_scheduled_job(writer: Dash, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[Job, int]] = []
    monkeypatch.setattr(
        writer.submitter,
        "dispatch",
        lambda job, producer=None, retries=0: sent.append((job, retries)),
    )
    later = utcnow() + timedelta(hours=3)
    job = writer.add_job(state=JobState.SCHEDULED, scheduled_for=later, kwargs={"x": 1})
    page = writer.client.get(f"/dashboard/jobs/{job.id}").text
    assert 'data-action="retry_now"' in page
    url = f"/dashboard/jobs/{job.id}/actions/retry_now"
    response = post(writer, url, f"/dashboard/jobs/{job.id}")
    assert response.status_code == 303
    assert state_of(writer, job.id) is JobState.QUEUED
    assert [(j.id, j.scheduled_for, r) for j, r in sent] == [(job.id, None, 0)]
    assert "sent to its queue to run now" in writer.client.get(response.headers["location"]).text
    assert post(writer, url, f"/dashboard/jobs/{job.id}").status_code == 409  # not waiting now


def test_run_now_sends_the_next_attempt_of_a_retrying_job(
    writer: Dash, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = writer.submit(1)
    sent: list[tuple[str, int]] = []
    monkeypatch.setattr(
        writer.submitter,
        "dispatch",
        lambda job, producer=None, retries=0: sent.append((job.id, retries)),
    )
    writer.store.mark_started(job.id, 1, "w1")
    writer.store.mark_retrying(job.id, 1, Failure("slow", "TimeoutError"))
    url = f"/dashboard/jobs/{job.id}/actions/retry_now"
    assert post(writer, url, f"/dashboard/jobs/{job.id}").status_code == 303
    assert sent == [(job.id, 1)]  # the worker runs attempt 2
    assert state_of(writer, job.id) is JobState.QUEUED
    # the delayed message of attempt 2 is skipped once attempt 2 has run and is retrying
    assert not is_stale(JobState.QUEUED, 1, 2)
    assert is_stale(JobState.RETRYING, 2, 2)
    assert not is_stale(JobState.STARTED, 2, 2)  # a redelivery after a crash still runs
    assert not is_stale(JobState.RETRYING, 2, 3)


def test_the_worker_gate_skips_the_delayed_duplicate_of_an_early_attempt(writer: Dash) -> None:
    job = writer.submit(1)
    writer.store.mark_started(job.id, 1, "w1")
    writer.store.mark_retrying(job.id, 1, Failure("slow", "TimeoutError"))
    gate = StoreGateHook(writer.store)

    def decide(attempt: int) -> Gate:
        return gate.before_run(RunContext(job.id, job.task, job.queue, attempt, "w1"))

    assert decide(2).runs  # the next attempt (early or delayed, whichever comes first)
    writer.store.mark_started(job.id, 2, "w1")  # run early, failed again
    writer.store.mark_retrying(job.id, 2, Failure("slow", "TimeoutError"))
    late = decide(2)  # the delayed message of attempt 2 arrives now
    assert not late.runs and late.reason == "stale_attempt"
    assert decide(3).runs


def test_broker_down_on_run_now_leaves_the_job_scheduled(
    writer: Dash, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(job: Job, producer: Any = None, retries: int = 0) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(writer.submitter, "dispatch", down)
    job = writer.add_job(state=JobState.SCHEDULED, scheduled_for=utcnow() + timedelta(hours=1))
    url = f"/dashboard/jobs/{job.id}/actions/retry_now"
    response = post(writer, url, f"/dashboard/jobs/{job.id}")
    assert response.status_code == 503
    assert "connection refused" in response.text
    assert state_of(writer, job.id) is JobState.SCHEDULED


def test_read_only_sees_no_job_buttons_and_is_refused(reader: Dash) -> None:
    job = reader.submit(1)
    page = reader.client.get(f"/dashboard/jobs/{job.id}").text
    assert "data-action=" not in page
    for name in ("cancel", "retry_now", "terminate", "replay"):
        url = f"/dashboard/jobs/{job.id}/actions/{name}"
        assert post(reader, url, f"/dashboard/jobs/{job.id}").status_code == 403
    assert state_of(reader, job.id) is JobState.QUEUED


def test_replayed_job_links_back_and_the_original_links_forward(writer: Dash) -> None:
    job = dead_job(writer)
    response = post(
        writer,
        f"/dashboard/dead-letters/{job.id}/replay",
        f"/dashboard/dead-letters/{job.id}",
        kwargs='{"x": 5}',
    )
    assert response.status_code == 303
    new_id = response.headers["location"].removeprefix("/dashboard/jobs/")
    copy = writer.store.get_job(new_id)
    assert copy is not None and copy.replay_of == job.id and dict(copy.kwargs) == {"x": 5}
    new_page = writer.client.get(response.headers["location"]).text
    assert "Replayed from job" in new_page and f'href="/dashboard/jobs/{job.id}"' in new_page
    old_page = writer.client.get(f"/dashboard/jobs/{job.id}").text
    assert "Replayed as job" in old_page and f'href="/dashboard/jobs/{new_id}"' in old_page


# -- dead letters ----------------------------------------------------------------------


def test_dead_letters_list_and_filters(writer: Dash) -> None:
    first = dead_job(writer)
    other = dead_job(writer, attempts=1, queue="mail")
    page = writer.client.get("/dashboard/dead-letters").text
    assert first.id in page and other.id in page
    assert '<th scope="col" class="optional">Reason</th>' in page
    by_queue = writer.client.get("/dashboard/dead-letters?queue=mail").text
    assert other.id in by_queue and first.id not in by_queue
    by_text = writer.client.get("/dashboard/dead-letters?q=MAILBOX").text
    assert first.id in by_text and other.id in by_text
    assert first.id not in writer.client.get("/dashboard/dead-letters?q=nothing-like-it").text
    assert first.id in writer.client.get("/dashboard/dead-letters?reason=exhausted").text
    assert first.id not in writer.client.get("/dashboard/dead-letters?reason=permanent").text
    assert first.id not in writer.client.get("/dashboard/dead-letters?replayed=yes").text
    bad = writer.client.get("/dashboard/dead-letters?replayed=maybe")
    assert bad.status_code == 200 and "choose any, yes or no" in bad.text
    live = writer.client.get("/dashboard/live/dead-letters?queue=mail").json()["html"]
    assert other.id in live and first.id not in live


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ('{"x": 1', "not valid JSON: Expecting"),
        ("[1, 2]", "must be a JSON object"),
        ('{"x": "not a number"}', "x: Input should be a valid integer"),
        ('{"nope": 1}', "nope"),
    ],
)
def test_replay_with_bad_arguments_shows_the_error_and_submits_nothing(
    writer: Dash, kwargs: str, message: str
) -> None:
    job = dead_job(writer)
    before = writer.job_count()
    response = post(
        writer,
        f"/dashboard/dead-letters/{job.id}/replay",
        f"/dashboard/dead-letters/{job.id}",
        kwargs=kwargs,
    )
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert kwargs.replace('"', "&#34;") in response.text  # what was typed stays in the form
    assert writer.job_count() == before
    entry = writer.store.get_dead_letter(job.id)
    assert entry is not None and entry.replayed_job_id is None


def test_replay_twice_is_refused(writer: Dash) -> None:
    job = dead_job(writer)
    url, page = f"/dashboard/dead-letters/{job.id}/replay", f"/dashboard/dead-letters/{job.id}"
    assert post(writer, url, page).status_code == 303
    assert post(writer, url, page).status_code == 409


def test_replay_all_matching_the_filter(writer: Dash) -> None:
    mail = [dead_job(writer, queue="mail", attempts=1) for _ in range(2)]
    other = dead_job(writer, attempts=1)
    response = post(
        writer, "/dashboard/dead-letters/replay-all", "/dashboard/dead-letters", queue="mail"
    )
    assert response.status_code == 303
    assert "done=replayed" in response.headers["location"]
    assert "count=2" in response.headers["location"]
    for job in mail:
        entry = writer.store.get_dead_letter(job.id)
        assert entry is not None and entry.replayed_job_id is not None
    untouched = writer.store.get_dead_letter(other.id)
    assert untouched is not None and untouched.replayed_job_id is None
    page = writer.client.get(response.headers["location"]).text
    assert "2 dead letter(s) replayed" in page


def test_discard_a_dead_letter(writer: Dash) -> None:
    job = dead_job(writer)
    url, page = f"/dashboard/dead-letters/{job.id}/discard", f"/dashboard/dead-letters/{job.id}"
    response = post(writer, url, page)
    assert response.status_code == 303
    assert writer.store.get_dead_letter(job.id) is None
    assert "was discarded" in writer.client.get(response.headers["location"]).text
    assert writer.client.get(page).status_code == 404
    assert post(writer, url, "/dashboard/dead-letters").status_code == 404


# -- schedules -------------------------------------------------------------------------


def add_schedule(dash: Dash, name: str = "nightly", **fields: Any) -> None:
    spec = {"task": "dashtest.add", "kwargs": {"x": 1}, "cron": "0 3 * * *", **fields}
    ScheduleManager(dash.store, dash.submitter).create(name, ScheduleSpec.model_validate(spec))


def schedule(dash: Dash, name: str = "nightly") -> Any:
    found = dash.store.get_schedule(name)
    assert found is not None
    return found


def test_schedules_list_pause_resume_and_run_now(writer: Dash) -> None:
    add_schedule(writer)
    page = writer.client.get("/dashboard/schedules").text
    assert "nightly" in page and "0 3 * * *" in page and "never" in page
    assert schedule(writer).next_run_at is not None
    base = "/dashboard/schedules/nightly/"
    assert post(writer, base + "pause", "/dashboard/schedules").status_code == 303
    assert schedule(writer).enabled is False
    assert "paused" in writer.client.get("/dashboard/live/schedules").json()["html"]
    assert post(writer, base + "resume", "/dashboard/schedules").status_code == 303
    assert schedule(writer).enabled is True
    response = post(writer, base + "run", "/dashboard/schedules")
    assert response.status_code == 303
    last_job = schedule(writer).last_job_id
    assert last_job is not None and writer.store.get_job(last_job) is not None
    after = writer.client.get(response.headers["location"]).text
    assert "submitted a job now" in after and f"/dashboard/jobs/{last_job}" in after
    assert (
        post(writer, "/dashboard/schedules/nope/pause", "/dashboard/schedules").status_code == 404
    )


def test_edit_a_schedule(writer: Dash) -> None:
    add_schedule(writer)
    page = "/dashboard/schedules/nightly"
    form = {"timing": "interval", "interval": "90", "args": "[]", "kwargs": '{"x": 2}'}
    response = post(writer, page + "/edit", page, **form)
    assert response.status_code == 303, response.text
    saved = schedule(writer)
    assert (saved.interval, saved.cron, dict(saved.kwargs)) == (90.0, None, {"x": 2})
    form = {"timing": "cron", "cron": "*/5 * * * *", "timezone": "Europe/Prague", "kwargs": "{}"}
    response = post(writer, page + "/edit", page, **form, args="[3]")
    assert response.status_code == 303, response.text
    saved = schedule(writer)
    assert (saved.cron, saved.timezone, saved.interval, saved.args) == (
        "*/5 * * * *",
        "Europe/Prague",
        None,
        (3,),
    )


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"timing": "cron", "cron": "61 * * * *"}, "cron", "61"),
        ({"timing": "cron", "cron": "0 3 * * *", "timezone": "Mars/Base"}, "timezone", "Mars"),
        ({"timing": "interval", "interval": "soon"}, "interval", "a number of seconds"),
        ({"timing": "interval", "interval": ""}, "interval", "give the interval"),
        ({"timing": "interval", "interval": "60", "kwargs": '{"x": "y"}'}, "kwargs", "x: Input"),
        ({"timing": "interval", "interval": "60", "args": "{}"}, "args", "JSON array"),
        ({"timing": "weekly"}, "timing", "choose cron, interval or at"),
    ],
)
def test_bad_schedule_edits_are_shown_precisely_and_change_nothing(
    writer: Dash, form: dict[str, str], field: str, message: str
) -> None:
    add_schedule(writer)
    before = schedule(writer)
    page = "/dashboard/schedules/nightly"
    response = post(writer, page + "/edit", page, **form)
    assert response.status_code == 422
    found = re.search(rf'<p id="e-{field}" class="error">([^<]*)</p>', response.text)
    assert found is not None, response.text
    assert message in found.group(1)
    assert schedule(writer) == before


# -- queues and workers ----------------------------------------------------------------


def test_queues_pause_and_resume(writer: Dash) -> None:
    page = writer.client.get("/dashboard/queues").text
    assert 'data-queue="mail"' in page and "Pause queue mail" in page
    assert post(writer, "/dashboard/queues/mail/pause", "/dashboard/queues").status_code == 303
    assert {s.name for s in writer.store.list_queue_states() if s.paused} == {"mail"}
    page = writer.client.get("/dashboard/queues?done=paused&name=mail").text
    assert "Resume queue mail" in page and "is paused" in page
    live = writer.client.get("/dashboard/live/queues").json()["html"]
    assert "Resume queue mail" in live
    assert post(writer, "/dashboard/queues/mail/resume", "/dashboard/queues").status_code == 303
    assert not any(s.paused for s in writer.store.list_queue_states())
    assert post(writer, "/dashboard/queues/nope/pause", "/dashboard/queues").status_code == 404
    assert post(writer, "/dashboard/queues/mail/drop", "/dashboard/queues").status_code == 404


def test_workers_with_their_queues_and_active_jobs(
    writer: Dash, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = writer.submit(1)
    worker = WorkerInfo("celery@box", ["default", "mail"], 4, [job.id], utcnow(), 42, {"x": 7})
    monkeypatch.setattr(inspection, "inspect_workers", lambda app, timeout=1.0: [worker])
    page = writer.client.get("/dashboard/queues").text
    assert "celery@box" in page and "default, mail" in page
    assert f'href="/dashboard/jobs/{job.id}"' in page

    def down(app: Any, timeout: float = 1.0) -> list[WorkerInfo]:
        raise OSError("broker gone")

    monkeypatch.setattr(inspection, "inspect_workers", down)
    page = writer.client.get("/dashboard/live/queues").json()["html"]
    assert "cannot ask the workers: broker gone" in page
    assert queues_page.POLL_MS > 0


# -- access: read-only keys and CSRF on every new form ---------------------------------

POSTS = [
    "/dashboard/dead-letters/{dead}/replay",
    "/dashboard/dead-letters/{dead}/discard",
    "/dashboard/dead-letters/replay-all",
    "/dashboard/schedules/nightly/pause",
    "/dashboard/schedules/nightly/resume",
    "/dashboard/schedules/nightly/run",
    "/dashboard/schedules/nightly/edit",
    "/dashboard/queues/default/pause",
    "/dashboard/queues/default/resume",
    "/dashboard/jobs/{dead}/actions/replay",
]


def _snapshot(dash: Dash) -> Any:
    return (
        dash.job_count(),
        dash.store.list_schedules(),
        [(s.name, s.paused) for s in dash.store.list_queue_states()],
        [(e.job_id, e.replayed_job_id) for e in _dead_letters(dash)],
    )


def _dead_letters(dash: Dash) -> list[Any]:
    return dash.store.list_dead_letters(DeadLetterFilter(), 100).items


def test_read_only_key_sees_everything_and_changes_nothing(reader: Dash) -> None:
    job = dead_job(reader)
    add_schedule(reader)
    for path in (
        "/dashboard/dead-letters",
        f"/dashboard/dead-letters/{job.id}",
        "/dashboard/schedules",
        "/dashboard/schedules/nightly",
        "/dashboard/queues",
    ):
        page = reader.client.get(path).text
        forms = re.findall(r'<form method="post" action="([^"]+)"', page)
        assert forms == ["/dashboard/logout"], (path, forms)
        assert "read-only" in page
    assert job.id in reader.client.get("/dashboard/dead-letters").text
    before = _snapshot(reader)
    for path in POSTS:
        url = path.format(dead=job.id)
        response = post(
            reader, url, "/dashboard/queues", kwargs="{}", timing="interval", interval="5"
        )
        assert response.status_code == 403, url
        assert "read-only" in response.text
    assert _snapshot(reader) == before


def test_every_new_form_needs_the_csrf_token(writer: Dash) -> None:
    job = dead_job(writer)
    add_schedule(writer)
    before = _snapshot(writer)
    for path in POSTS:
        url = path.format(dead=job.id)
        response = writer.client.post(url, data={"csrf_token": "forged"}, follow_redirects=False)
        assert response.status_code == 403, url
    assert _snapshot(writer) == before


def test_pages_have_labels_and_table_headers(writer: Dash) -> None:
    dead_job(writer)
    add_schedule(writer)
    for path in ("/dashboard/dead-letters", "/dashboard/schedules", "/dashboard/queues"):
        page = writer.client.get(path).text
        assert '<th scope="col">' in page, path
        for field_id in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page):
            assert f'<label for="{field_id}"' in page, (path, field_id)
        assert 'name="viewport"' in page
    entry_page = writer.client.get(f"/dashboard/dead-letters/{dead_job(writer).id}").text
    assert '<label for="kwargs">' in entry_page
    assert json.dumps({"x": 1}, indent=2) in entry_page.replace("&#34;", '"')
