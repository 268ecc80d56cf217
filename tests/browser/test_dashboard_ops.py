"""The operations pages in a real browser: replay a dead letter with corrected arguments,
pause and resume a queue, cancel and run waiting jobs, schedules, and read-only keys."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.browser.conftest import Server, log_in, screenshot

pytestmark = pytest.mark.browser

#: every button that changes something on the operations pages
CHANGING_BUTTONS = re.compile("Replay|Discard|Pause|Resume|Run|Save|Cancel")


def _submit(server: Server, task: str, **body: object) -> str:
    response = server.api("POST", "/api/v1/jobs", json={"task": task, **body})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def _dead_job(server: Server) -> str:
    """A job that fails every attempt and dies (tests.fragile: 3 attempts)."""
    job_id = _submit(server, "tests.fragile", kwargs={"should_fail": True})
    job = server.client.wait(job_id, timeout=60)
    assert job.state.value == "DEAD", job
    return job_id


def _accept_dialogs(page: Page) -> None:
    def accept(dialog: Dialog) -> None:
        dialog.accept()

    page.on("dialog", accept)


def _no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways at phone width"


def test_replay_a_dead_letter_with_corrected_arguments(page: Page, server: Server) -> None:
    dead_id = _dead_job(server)
    log_in(page, server.url, server.write_key)
    page.get_by_role("link", name="Dead letters").click()
    expect(page.get_by_role("heading", name="Dead letters", level=1)).to_be_visible()
    page.get_by_label("Search error text").fill("still broken")
    page.get_by_role("button", name="Filter").click()
    row = page.locator(f'tr[data-dead-letter-id="{dead_id}"]')
    expect(row).to_be_visible()
    screenshot(page, "dead-letters")
    row.get_by_role("link", name=re.compile("Dead letter")).click()
    expect(page.get_by_text("still broken").first).to_be_visible()
    arguments = page.get_by_label("Keyword arguments (JSON object)")
    arguments.fill('{"should_fail": "perhaps"}')
    page.get_by_role("button", name="Replay", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(
        "should_fail: Input should be a valid boolean"
    )
    expect(arguments).to_have_attribute("aria-invalid", "true")
    expect(arguments).to_have_value('{"should_fail": "perhaps"}')
    screenshot(page, "dead-letter-invalid")
    arguments.fill('{"should_fail": false}')
    page.get_by_role("button", name="Replay", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Replayed from job")).to_be_visible()
    expect(page.locator(".facts .state")).to_have_text("SUCCEEDED", timeout=60_000)
    screenshot(page, "dead-letter-replayed")
    page.get_by_role("link", name=dead_id).click()
    expect(page.get_by_text("Replayed as job")).to_be_visible()
    expect(page.get_by_role("heading", name="Attempts")).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("Attempt 3: DEAD"))).to_be_visible()
    screenshot(page, "job-dead")


def test_new_dead_letters_and_schedules_appear_without_a_reload(page: Page, server: Server) -> None:
    log_in(page, server.url, server.read_key)
    page.goto(f"{server.url}/dashboard/dead-letters")
    page.evaluate("window.__notReloaded = true")
    dead_id = _dead_job(server)
    expect(page.locator(f'tr[data-dead-letter-id="{dead_id}"]')).to_be_visible(timeout=30_000)
    page.goto(f"{server.url}/dashboard/schedules")
    page.evaluate("window.__notReloaded = true")
    name = f"live-{time.monotonic_ns()}"
    body = {"name": name, "task": "tests.echo", "kwargs": {"value": "x"}, "interval": 3600}
    assert server.api("POST", "/api/v1/schedules", json=body).status_code == 201
    expect(page.locator(f'tr[data-schedule="{name}"]')).to_be_visible(timeout=30_000)
    assert server.api("POST", f"/api/v1/schedules/{name}/pause").status_code == 200
    expect(page.locator(f'tr[data-schedule="{name}"]')).to_contain_text("paused", timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True, "the page was reloaded"


def test_pause_a_queue_and_resume_it(page: Page, server: Server) -> None:
    _accept_dialogs(page)
    log_in(page, server.url, server.write_key)
    page.get_by_role("link", name="Queues & workers").click()
    expect(page.get_by_role("heading", name="Workers", exact=True)).to_be_visible()
    expect(page.locator("table.workers tbody tr")).to_have_count(1, timeout=20_000)
    page.get_by_role("button", name="Pause queue default").click()
    status = page.locator('tr[data-queue="default"] .queue-status')
    expect(status).to_have_text("paused")
    expect(page.get_by_role("status").filter(has_text="is paused")).to_be_visible()
    # the worker reports it stopped consuming; the page shows it without a reload
    page.evaluate("window.__notReloaded = true")
    consumers = page.locator('tr[data-queue="default"] td.consumers')
    expect(consumers).to_have_text("none", timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True
    job_id = _submit(server, "tests.echo", kwargs={"value": "held"})
    time.sleep(3)  # paused: the job waits in the queue (no timing asserted, only the state)
    assert server.api("GET", f"/api/v1/jobs/{job_id}").json()["state"] == "QUEUED"
    screenshot(page, "queues")
    page.get_by_role("button", name="Resume queue default").click()
    expect(status).to_have_text("consuming")
    job = server.client.wait(job_id, timeout=60)
    assert job.state.value == "SUCCEEDED"


def test_cancel_a_waiting_job_and_run_another_now(page: Page, server: Server) -> None:
    _accept_dialogs(page)
    later = {"value": "later"}
    cancelled = _submit(server, "tests.echo", kwargs=later, countdown=3600)
    hurried = _submit(server, "tests.echo", kwargs=later, countdown=3600)
    log_in(page, server.url, server.write_key)
    page.goto(f"{server.url}/dashboard/jobs/{cancelled}")
    expect(page.locator(".facts .state")).to_have_text("SCHEDULED")
    screenshot(page, "job-scheduled")
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="was cancelled")).to_be_visible()
    expect(page.locator(".facts .state")).to_have_text("CANCELLED")
    expect(page.locator("button[data-action='cancel']")).to_have_count(0)
    page.goto(f"{server.url}/dashboard/jobs/{hurried}")
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("status").filter(has_text="run now")).to_be_visible()
    expect(page.locator(".facts .state")).to_have_text("SUCCEEDED", timeout=60_000)
    assert server.api("GET", f"/api/v1/jobs/{cancelled}").json()["state"] == "CANCELLED"


def test_run_now_a_retrying_job(page: Page, server: Server, tmp_path: Path) -> None:
    """The first attempt fails and waits an hour for its retry; Run now runs attempt 2."""
    counter = tmp_path / "runs"
    job_id = _submit(
        server,
        "tests.flaky",
        kwargs={"counter_file": str(counter), "succeed_on": 2},
        retry={"max_retries": 3, "base_delay": 3600, "max_delay": 7200},
    )
    deadline = time.monotonic() + 60
    while server.api("GET", f"/api/v1/jobs/{job_id}").json()["state"] != "RETRYING":
        assert time.monotonic() < deadline, "the first attempt never failed"
        time.sleep(0.2)
    log_in(page, server.url, server.write_key)
    page.goto(f"{server.url}/dashboard/jobs/{job_id}")
    expect(page.locator(".facts .state")).to_have_text("RETRYING")
    screenshot(page, "job-retrying")
    page.get_by_role("button", name="Run now").click()
    expect(page.locator(".facts .state")).to_have_text("SUCCEEDED", timeout=60_000)
    job = server.api("GET", f"/api/v1/jobs/{job_id}").json()
    attempts = [(a["attempt"], a["state"]) for a in job["attempts"]]
    assert (attempts, job["result"]) == ([(1, "RETRYING"), (2, "SUCCEEDED")], 2)
    assert counter.read_text() == "xx"


def test_schedules_pause_run_now_and_edit(page: Page, server: Server) -> None:
    name = f"report-{time.monotonic_ns()}"
    body = {"name": name, "task": "tests.echo", "kwargs": {"value": "tick"}, "cron": "0 3 * * *"}
    response = server.api("POST", "/api/v1/schedules", json=body)
    assert response.status_code == 201, response.text
    log_in(page, server.url, server.write_key)
    page.get_by_role("link", name="Schedules").click()
    row = page.locator(f'tr[data-schedule="{name}"]')
    expect(row).to_contain_text("0 3 * * *")
    row.get_by_role("button", name=f"Pause {name}").click()
    expect(row).to_contain_text("paused")
    row.get_by_role("button", name=f"Resume {name}").click()
    expect(row).to_contain_text("active")
    row.get_by_role("button", name=f"Run {name} now").click()
    expect(page.get_by_role("status").filter(has_text="submitted a job now")).to_be_visible()
    screenshot(page, "schedules")
    row.get_by_role("link", name=f"Edit {name}").click()
    page.get_by_label("Cron expression (minute hour day month weekday)").fill("0 25 * * *")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("not saved")
    expect(page.locator("#e-cron")).to_contain_text("25")
    screenshot(page, "schedule-invalid")
    page.get_by_label("Every N seconds").check()
    page.get_by_label("Interval (seconds)").fill("120")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="was saved")).to_be_visible()
    expect(page.locator(f'tr[data-schedule="{name}"]')).to_contain_text("every 120 s")
    assert server.api("GET", f"/api/v1/schedules/{name}").json()["interval"] == 120


def test_read_only_key_cannot_change_anything_on_the_new_pages(page: Page, server: Server) -> None:
    dead_id = _dead_job(server)
    name = f"ro-{time.monotonic_ns()}"
    body = {"name": name, "task": "tests.echo", "kwargs": {"value": "x"}, "interval": 3600}
    assert server.api("POST", "/api/v1/schedules", json=body).status_code == 201
    log_in(page, server.url, server.read_key)
    paths = ["/dead-letters", f"/dead-letters/{dead_id}", "/schedules", f"/schedules/{name}"]
    for path in [*paths, "/queues"]:
        page.goto(f"{server.url}/dashboard{path}")
        expect(page.locator(".badge")).to_have_text("read-only")
        forms = page.locator("form[method='post']")
        expect(forms).to_have_count(1)  # log out only
        changes = page.get_by_role("button", name=CHANGING_BUTTONS)
        expect(changes).to_have_count(0)
    screenshot(page, "queues-read-only")
    token = page.locator('input[name="csrf_token"]').first.input_value()
    posts = [
        f"/dead-letters/{dead_id}/replay",
        f"/dead-letters/{dead_id}/discard",
        "/dead-letters/replay-all",
        f"/schedules/{name}/pause",
        f"/schedules/{name}/run",
        f"/schedules/{name}/edit",
        "/queues/default/pause",
    ]
    for path in posts:
        response = page.request.post(
            f"{server.url}/dashboard{path}",
            form={"csrf_token": token, "kwargs": "{}", "timing": "interval", "interval": "5"},
            max_redirects=0,
        )
        assert response.status == 403, path
    entry = server.api("GET", f"/api/v1/dead-letters/{dead_id}").json()
    assert entry["replayed_job_id"] is None
    schedule = server.api("GET", f"/api/v1/schedules/{name}").json()
    assert (schedule["enabled"], schedule["last_run_at"], schedule["interval"]) == (
        True,
        None,
        3600,
    )
    queues = server.api("GET", "/api/v1/queues").json()["items"]
    assert not any(q["paused"] for q in queues)


def test_new_pages_are_readable_at_phone_width(page: Page, server: Server) -> None:
    dead_id = _dead_job(server)
    page.set_viewport_size({"width": 375, "height": 740})
    log_in(page, server.url, server.write_key)
    for path, shot in (
        ("/dashboard/dead-letters", "dead-letters-phone"),
        (f"/dashboard/dead-letters/{dead_id}", "dead-letter-phone"),
        ("/dashboard/schedules", "schedules-phone"),
        ("/dashboard/queues", "queues-phone"),
        (f"/dashboard/jobs/{dead_id}", "job-phone"),
    ):
        page.goto(server.url + path)
        _no_sideways_scroll(page)
        screenshot(page, shot)
