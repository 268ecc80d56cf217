"""The dashboard in a real browser: log in, watch a job appear and succeed, read-only access."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Server, log_in, screenshot

pytestmark = pytest.mark.browser


def _finished_job(server: Server, task: str = "tests.echo", **kwargs: object) -> str:
    response = server.api("POST", "/api/v1/jobs", json={"task": task, "kwargs": kwargs})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    server.client.wait(job_id)
    return job_id


def test_login_page_is_accessible_and_refuses_a_wrong_key(page: Page, server: Server) -> None:
    page.goto(server.url + "/dashboard/jobs")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
    screenshot(page, "login")
    page.get_by_label("API key").fill("cvk_wrong-wrong-wrong-wrong")
    page.get_by_role("button", name="Log in with key").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")


def test_new_job_appears_live_and_its_detail_follows_it(page: Page, server: Server) -> None:
    _finished_job(server, "tests.fail", message="disk full")  # something in recent failures
    log_in(page, server.url, server.write_key)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.goto(server.url + "/dashboard/jobs")
    page.evaluate("window.__notReloaded = true")
    response = server.api(
        "POST", "/api/v1/jobs", json={"task": "tests.sleep", "kwargs": {"seconds": 1.5}}
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    expect(row).to_be_visible(timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True, "the page was reloaded"
    expect(page.locator("#live-status")).to_contain_text("live")
    screenshot(page, "jobs")
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("tests.sleep")
    expect(page.locator(".facts .state")).to_have_text("SUCCEEDED", timeout=30_000)
    expect(page.get_by_role("heading", name="Result")).to_be_visible()
    screenshot(page, "job")
    page.goto(server.url + "/dashboard/")
    expect(page.get_by_text("disk full")).to_be_visible()
    screenshot(page, "overview")


def test_failed_job_detail_and_replay(page: Page, server: Server) -> None:
    job_id = _finished_job(server, "tests.fail", message="mailbox unavailable")
    log_in(page, server.url, server.write_key)
    page.goto(f"{server.url}/dashboard/jobs/{job_id}")
    expect(page.get_by_text("PermanentError", exact=True)).to_be_visible()
    expect(page.get_by_text("Traceback", exact=True)).to_be_visible()
    screenshot(page, "job-failed")
    page.get_by_role("button", name="Replay as a new job").click()
    expect(page.get_by_role("status").filter(has_text="Replayed from job")).to_be_visible()
    assert job_id not in page.url.split("?")[0]
    expect(page.locator(".facts .state")).to_have_text("FAILED", timeout=30_000)


def test_search_and_filter(page: Page, server: Server) -> None:
    marker = f"needle-{time.monotonic_ns()}"
    job_id = _finished_job(server, value=marker)
    log_in(page, server.url, server.read_key)
    page.goto(server.url + "/dashboard/jobs")
    page.get_by_label("Search arguments and errors").fill(marker)
    page.get_by_label("State").select_option("SUCCEEDED")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody#job-rows tr[data-job-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", job_id)


def test_read_only_key_sees_no_buttons_and_forged_posts_are_refused(
    page: Page, server: Server
) -> None:
    job_id = _finished_job(server, "tests.fail", message="read-only check")
    log_in(page, server.url, server.read_key)
    expect(page.locator(".badge")).to_have_text("read-only")
    page.goto(f"{server.url}/dashboard/jobs/{job_id}")
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.locator("button[data-action]")).to_have_count(0)
    expect(page.get_by_role("heading", name="Actions")).to_have_count(0)
    screenshot(page, "job-read-only")
    before = len(server.api("GET", "/api/v1/jobs?limit=500").json()["items"])
    token = page.locator('input[name="csrf_token"]').first.input_value()
    action = f"{server.url}/dashboard/jobs/{job_id}/actions/replay"
    # the browser's own cookies, a valid CSRF token, but only the read scope
    with_token = page.request.post(action, form={"csrf_token": token}, max_redirects=0)
    assert with_token.status == 403
    # a forged form: the session cookie rides along, the token does not
    forged = page.request.post(action, form={}, max_redirects=0)
    assert forged.status == 403
    after = len(server.api("GET", "/api/v1/jobs?limit=500").json()["items"])
    assert after == before


def test_forged_post_with_a_write_session_is_refused(page: Page, server: Server) -> None:
    job_id = _finished_job(server, value="forged")
    log_in(page, server.url, server.write_key)
    action = f"{server.url}/dashboard/jobs/{job_id}/actions/replay"
    forged = page.request.post(action, form={"csrf_token": "guessed"}, max_redirects=0)
    assert forged.status == 403


def test_readable_at_phone_width(page: Page, server: Server) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    log_in(page, server.url, server.read_key)
    for path, name in (("/dashboard/", "overview-phone"), ("/dashboard/jobs", "jobs-phone")):
        page.goto(server.url + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways at phone width"
        screenshot(page, name)
