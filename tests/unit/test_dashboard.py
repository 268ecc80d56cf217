"""The dashboard over HTTP (no browser): access, sessions, CSRF, pages and live fragments."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from httpx import Response

from conveyor.cli import cli
from conveyor.dashboard import DashboardConfigError, create_dashboard
from conveyor.dashboard.cache import TtlCache
from conveyor.dashboard.secret import resolve_secret
from conveyor.dashboard.session import COOKIE_NAME, SessionSigner
from conveyor.engine import create_app
from conveyor.jobs import Job, JobState, new_job_id, utcnow
from conveyor.keys import Authenticator, create_key
from conveyor.server import create_server
from conveyor.settings import Settings, SettingsError, load_settings
from conveyor.store.base import JobFilter
from conveyor.store.memory import MemoryStore
from conveyor.submit import SubmitRequest, Submitter
from conveyor.task import task

SECRET = "dashboard-test-secret-0123456789abcdef"
USER, PASSWORD = "ops", "correct horse battery"


@task(name="dashtest.add")
def add(x: int, y: int = 1) -> int:
    """Add two numbers."""
    return x + y


class Dash:
    """One server (API + dashboard) under test, with a logged-out browser-like client."""

    def __init__(self, settings: Settings, base_url: str = "http://testserver") -> None:
        self.settings = settings
        self.store = MemoryStore()
        self.submitter = Submitter(settings, self.store, create_app(settings))
        self.app = create_server(settings, self.store, self.submitter)
        self.client = TestClient(self.app, base_url=base_url)
        self.read_key, _ = create_key(self.store, "reader", ["read"])
        self.write_key, self.write_record = create_key(self.store, "writer", ["write"])

    def submit(self, *args: Any, **kwargs: Any) -> Job:
        return self.submitter.submit(SubmitRequest("dashtest.add", args=args, kwargs=kwargs))

    def add_job(self, **values: Any) -> Job:
        now = utcnow()
        job = Job(
            id=new_job_id(),
            task=values.pop("task", "dashtest.add"),
            queue=values.pop("queue", "default"),
            state=values.pop("state", JobState.QUEUED),
            created_at=values.pop("created_at", now),
            updated_at=now,
            **values,
        )
        return self.store.create_job(job)

    def csrf(self, path: str) -> str:
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        return csrf_in(page.text)

    def login(self, **form: str) -> Response:
        token = self.csrf("/dashboard/login")
        return self.client.post(
            "/dashboard/login", data={"csrf_token": token, **form}, follow_redirects=False
        )

    def login_key(self, key: str) -> None:
        response = self.login(api_key=key)
        assert response.status_code == 303, response.text

    def job_count(self) -> int:
        return len(self.store.list_jobs(JobFilter(), 1000).items)


def replace_cookie(client: TestClient, value: str) -> None:
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, value, path="/dashboard")


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "var",
        "broker_url": "memory://",
        "database_url": "memory://",
        "result_backend": "cache+memory://",
        "secret_key": SECRET,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def dash(tmp_path: Path) -> Iterator[Dash]:
    d = Dash(make_settings(tmp_path, dashboard_user=USER, dashboard_password=PASSWORD))
    with d.client:
        yield d


# -- access ----------------------------------------------------------------------------


def test_pages_redirect_to_login_and_live_answers_401(dash: Dash) -> None:
    response = dash.client.get("/dashboard/jobs?state=FAILED", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login?next=/dashboard/jobs%3Fstate%3DFAILED"
    assert dash.client.get("/dashboard/live/jobs").status_code == 401


def test_login_with_key_sets_a_hardened_cookie_and_goes_to_next(dash: Dash) -> None:
    response = dash.login(api_key=dash.write_key, next="/dashboard/jobs")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/jobs"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # plain http here
    assert dash.write_key not in cookie
    page = dash.client.get("/dashboard/jobs")
    assert page.status_code == 200
    assert "writer" in page.text


def test_cookie_is_secure_over_https(tmp_path: Path) -> None:
    d = Dash(make_settings(tmp_path), base_url="https://testserver")
    with d.client:
        response = d.login(api_key=d.write_key)
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"]


def test_wrong_key_is_refused(dash: Dash) -> None:
    response = dash.login(api_key="cvk_not-a-key-at-all-0000000000")
    assert response.status_code == 401
    assert "not accepted" in response.text
    assert dash.client.get("/dashboard/", follow_redirects=False).status_code == 303


def test_login_without_csrf_token_is_refused(dash: Dash) -> None:
    dash.client.get("/dashboard/login")
    response = dash.client.post(
        "/dashboard/login", data={"api_key": dash.write_key}, follow_redirects=False
    )
    assert response.status_code == 403
    assert dash.client.get("/dashboard/", follow_redirects=False).status_code == 303


def test_login_with_user_and_password(dash: Dash) -> None:
    assert dash.login(username=USER, password="wrong password!!").status_code == 401
    assert dash.login(username="root", password=PASSWORD).status_code == 401
    response = dash.login(username=USER, password=PASSWORD)
    assert response.status_code == 303
    page = dash.client.get("/dashboard/")
    assert page.status_code == 200
    assert USER in page.text


def test_user_login_form_is_only_offered_when_configured(tmp_path: Path) -> None:
    d = Dash(make_settings(tmp_path))
    with d.client:
        page = d.client.get("/dashboard/login").text
        assert 'name="password"' not in page
        assert d.login(username="", password="anything at all").status_code == 401


def test_changing_the_password_ends_user_sessions(tmp_path: Path) -> None:
    first = Dash(make_settings(tmp_path, dashboard_user=USER, dashboard_password=PASSWORD))
    with first.client:
        assert first.login(username=USER, password=PASSWORD).status_code == 303
        cookie = first.client.cookies[COOKIE_NAME]
    same = Dash(make_settings(tmp_path, dashboard_user=USER, dashboard_password=PASSWORD))
    with same.client:
        replace_cookie(same.client, cookie)
        assert same.client.get("/dashboard/", follow_redirects=False).status_code == 200
    changed = Dash(make_settings(tmp_path, dashboard_user=USER, dashboard_password=PASSWORD + "!"))
    with changed.client:
        replace_cookie(changed.client, cookie)
        assert changed.client.get("/dashboard/", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_the_session(dash: Dash) -> None:
    dash.login_key(dash.write_key)
    assert dash.client.get("/dashboard/").status_code == 200
    dash.store.revoke_api_key(dash.write_record.id, utcnow())
    assert dash.client.get("/dashboard/", follow_redirects=False).status_code == 303


def test_tampered_or_expired_cookie_is_ignored(dash: Dash) -> None:
    dash.login_key(dash.write_key)
    cookie = dash.client.cookies[COOKIE_NAME]
    body, signature = cookie.rsplit(".", 1)
    replace_cookie(dash.client, body + "x." + signature)
    assert dash.client.get("/dashboard/", follow_redirects=False).status_code == 303
    signer = SessionSigner(SECRET.encode(), lifetime=-1)
    expired = signer.dumps(signer.new("key:" + "0" * 64))
    replace_cookie(dash.client, expired)
    assert dash.client.get("/dashboard/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/dashboard//evil.example", "/other"]
)
def test_login_never_redirects_off_the_dashboard(dash: Dash, target: str) -> None:
    response = dash.login(api_key=dash.write_key, next=target)
    assert response.headers["location"] == "/dashboard/"


def test_logout_needs_csrf_and_ends_the_session(dash: Dash) -> None:
    dash.login_key(dash.write_key)
    forged = dash.client.post("/dashboard/logout", data={}, follow_redirects=False)
    assert forged.status_code == 403
    token = dash.csrf("/dashboard/")
    response = dash.client.post(
        "/dashboard/logout", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/login"
    assert dash.client.get("/dashboard/", follow_redirects=False).status_code == 303


def test_security_headers(dash: Dash) -> None:
    response = dash.client.get("/dashboard/login")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


# -- actions: read-only keys change nothing -----------------------------------------------


def _action_url(job: Job) -> str:
    return f"/dashboard/jobs/{job.id}/actions/replay"


def test_read_only_key_sees_no_buttons_and_the_server_refuses(dash: Dash) -> None:
    job = dash.add_job(state=JobState.FAILED, args=(1,), error="boom")
    dash.login_key(dash.read_key)
    page = dash.client.get(f"/dashboard/jobs/{job.id}")
    assert page.status_code == 200
    assert "read-only" in page.text
    assert "/actions/" not in page.text
    assert '<button type="submit" data-action' not in page.text
    response = dash.client.post(
        _action_url(job), data={"csrf_token": csrf_in(page.text)}, follow_redirects=False
    )
    assert response.status_code == 403
    assert dash.job_count() == 1


def test_read_only_user_scope(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, dashboard_user=USER, dashboard_password=PASSWORD, dashboard_user_scope="read"
    )
    d = Dash(settings)
    with d.client:
        job = d.add_job(state=JobState.SUCCEEDED)
        assert d.login(username=USER, password=PASSWORD).status_code == 303
        page = d.client.get(f"/dashboard/jobs/{job.id}").text
        assert "/actions/" not in page
        forged = d.client.post(_action_url(job), data={"csrf_token": csrf_in(page)})
        assert forged.status_code == 403


def test_action_without_csrf_token_is_refused(dash: Dash) -> None:
    job = dash.add_job(state=JobState.FAILED, args=(1,))
    dash.login_key(dash.write_key)
    for data in ({}, {"csrf_token": "forged"}):
        response = dash.client.post(_action_url(job), data=data, follow_redirects=False)
        assert response.status_code == 403
    assert dash.job_count() == 1


def test_replay_submits_a_copy_and_links_back(dash: Dash) -> None:
    job = dash.add_job(state=JobState.FAILED, args=(2,), kwargs={"y": 5}, error="boom")
    dash.login_key(dash.write_key)
    page = dash.client.get(f"/dashboard/jobs/{job.id}")
    assert 'data-action="replay"' in page.text
    response = dash.client.post(
        _action_url(job), data={"csrf_token": csrf_in(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    new_id = response.headers["location"].split("/jobs/")[1].split("?")[0]
    copy = dash.store.get_job(new_id)
    assert copy is not None and copy.id != job.id
    assert (copy.task, copy.args, dict(copy.kwargs), copy.state) == (
        job.task,
        (2,),
        {"y": 5},
        JobState.QUEUED,
    )
    detail = dash.client.get(response.headers["location"])
    assert f'href="/dashboard/jobs/{job.id}"' in detail.text


def test_replay_of_an_unfinished_job_is_refused(dash: Dash) -> None:
    job = dash.submit(1)
    dash.login_key(dash.write_key)
    page = dash.client.get(f"/dashboard/jobs/{job.id}")
    assert "/actions/replay" not in page.text
    response = dash.client.post(_action_url(job), data={"csrf_token": csrf_in(page.text)})
    assert response.status_code == 409
    assert dash.job_count() == 1


def test_replay_that_no_longer_validates_is_refused_with_the_reason(dash: Dash) -> None:
    job = dash.add_job(state=JobState.FAILED, args=("not a number",))
    dash.login_key(dash.write_key)
    token = dash.csrf(f"/dashboard/jobs/{job.id}")
    response = dash.client.post(_action_url(job), data={"csrf_token": token})
    assert response.status_code == 422
    assert "refused" in response.text
    assert dash.job_count() == 1


# -- pages -----------------------------------------------------------------------------


def test_jobs_page_filters_searches_and_pages(dash: Dash) -> None:
    base = utcnow() - timedelta(hours=1)
    for n in range(55):
        dash.add_job(args=(n,), created_at=base + timedelta(seconds=n))
    failed = dash.add_job(
        state=JobState.FAILED, error="SMTP 550 mailbox <b>unavailable</b>", created_at=base
    )
    dash.login_key(dash.read_key)
    first = dash.client.get("/dashboard/jobs").text
    assert first.count("<tr data-job-id") == 50
    older = re.search(r'href="(/dashboard/jobs\?cursor=[^"]+)" rel="next"', first)
    assert older
    second = dash.client.get(older.group(1).replace("&amp;", "&")).text
    assert second.count("<tr data-job-id") == 6
    assert 'rel="next"' not in second
    found = dash.client.get("/dashboard/jobs", params={"q": "mailbox", "state": "failed"}).text
    assert found.count("<tr data-job-id") == 1
    assert failed.id in found
    assert "&lt;b&gt;unavailable&lt;/b&gt;" in found  # escaped, never markup
    window = {"since": (base + timedelta(seconds=50)).strftime("%Y-%m-%dT%H:%M:%S")}
    assert dash.client.get("/dashboard/jobs", params=window).text.count("<tr data-job-id") == 5


def test_jobs_page_reports_bad_filters(dash: Dash) -> None:
    dash.login_key(dash.read_key)
    page = dash.client.get("/dashboard/jobs", params={"since": "yesterday", "state": "NOPE"})
    assert page.status_code == 200
    assert 'aria-invalid="true"' in page.text
    assert "unknown state" in page.text
    bad_cursor = dash.client.get("/dashboard/jobs", params={"cursor": "!!"})
    assert "not valid any more" in bad_cursor.text


def test_job_detail_shows_everything_escaped(dash: Dash) -> None:
    now = utcnow()
    job = dash.add_job(
        state=JobState.FAILED,
        args=(1,),
        kwargs={"note": "<script>alert(1)</script>"},
        attempts=2,
        error="it broke",
        error_type="ValueError",
        traceback="Traceback (most recent call last):\nValueError: it broke",
        started_at=now,
        finished_at=now,
    )
    dash.login_key(dash.read_key)
    page = dash.client.get(f"/dashboard/jobs/{job.id}").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for text in ("ValueError", "it broke", "Traceback", "Started (attempt 2)", "Finished: FAILED"):
        assert text in page
    assert dash.client.get("/dashboard/jobs/nope").status_code == 404


def test_overview_counts_queues_throughput_and_failures(dash: Dash) -> None:
    now = utcnow()
    for _ in range(3):
        dash.add_job(state=JobState.SUCCEEDED, finished_at=now - timedelta(seconds=5))
    dash.add_job(state=JobState.FAILED, queue="email", error="bounced", finished_at=now)
    dash.add_job(state=JobState.SUCCEEDED, finished_at=now - timedelta(hours=3))
    dash.login_key(dash.read_key)
    page = dash.client.get("/dashboard/").text
    assert "3 succeeded and 1 failed" in page  # last hour
    assert "4 succeeded and 1 failed" in page  # last 24 hours
    assert page.count('<rect class="ok"') >= 2
    assert "bounced" in page
    assert 'href="/dashboard/jobs?queue=email&amp;state=FAILED">1</a>' in page


def test_live_fragments_show_new_jobs(dash: Dash) -> None:
    dash.login_key(dash.read_key)
    before = dash.client.get("/dashboard/live/jobs").json()["html"]
    job = dash.submit(7)
    after = dash.client.get("/dashboard/live/jobs").json()["html"]
    assert job.id not in before
    assert job.id in after
    detail = dash.client.get(f"/dashboard/live/jobs/{job.id}").json()["html"]
    assert "state-queued" in detail
    dash.store.mark_started(job.id, 1, "w1")
    detail = dash.client.get(f"/dashboard/live/jobs/{job.id}").json()["html"]
    assert "state-started" in detail
    assert "Queues" in dash.client.get("/dashboard/live/overview").json()["html"]


def test_nav_has_only_pages_that_exist(dash: Dash) -> None:
    dash.login_key(dash.read_key)
    page = dash.client.get("/dashboard/").text
    nav = page.split('<nav aria-label="Main">')[1].split("</nav>")[0]
    links = re.findall(r'href="([^"]+)"', nav)
    assert links == [
        "/dashboard/",
        "/dashboard/jobs",
        "/dashboard/dead-letters",
        "/dashboard/schedules",
        "/dashboard/queues",
    ]
    for link in links:
        assert dash.client.get(link).status_code == 200


def test_static_files_are_served(dash: Dash) -> None:
    assert dash.client.get("/dashboard/static/dashboard.js").status_code == 200
    assert "text/css" in dash.client.get("/dashboard/static/dashboard.css").headers["content-type"]


def test_api_is_unchanged_next_to_the_dashboard(dash: Dash) -> None:
    response = dash.client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {dash.read_key}"})
    assert response.status_code == 200
    assert dash.client.get("/healthz").json() == {"status": "ok"}


# -- configuration ---------------------------------------------------------------------


def test_dev_secret_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, secret_key="")
    first = resolve_secret(settings)
    assert len(first) >= 32
    path = settings.secret_key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_secret(settings) == first


def test_production_without_secret_refuses_to_start_the_dashboard(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, secret_key="", env="production", api_keys=["k" * 20])
    store = MemoryStore()
    submitter = Submitter(settings, store, create_app(settings))
    with pytest.raises(DashboardConfigError, match="CONVEYOR_SECRET_KEY"):
        create_dashboard(settings, store, submitter, Authenticator(settings, store))
    assert not settings.secret_key_file.exists()
    disabled = settings.model_copy(update={"dashboard_enabled": False})
    app = create_server(disabled, store, submitter)
    with TestClient(app) as client:
        assert client.get("/dashboard/login").status_code == 404


def test_conveyor_api_refuses_to_start_without_secret_in_production(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "CONVEYOR_ENV": "production",
        "CONVEYOR_DATA_DIR": str(tmp_path),
        "CONVEYOR_DATABASE_URL": "memory://",
        "CONVEYOR_BROKER_URL": "memory://",
        "CONVEYOR_API_KEYS": "k" * 20,
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["api"])
    assert result.exit_code != 0
    assert "CONVEYOR_SECRET_KEY" in result.output


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dashboard_user": "ops"}, "dashboard_password"),
        ({"dashboard_user": "ops", "dashboard_password": "short"}, "12 characters"),
        ({"secret_key": "too-short"}, "32 characters"),
    ],
)
def test_dashboard_settings_are_checked(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        make_settings(tmp_path, **overrides)


def test_config_command_masks_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONVEYOR_SECRET_KEY", SECRET)
    monkeypatch.setenv("CONVEYOR_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output


def test_ttl_cache_recomputes_only_after_the_ttl() -> None:
    now = [100.0]
    cache = TtlCache(clock=lambda: now[0])
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("k", 5, compute) == 1
    now[0] += 4.9
    assert cache.get("k", 5, compute) == 1
    now[0] += 0.2
    assert cache.get("k", 5, compute) == 2
    assert cache.get("other", 5, compute) == 3


def test_unknown_pages_get_an_html_error_page(dash: Dash) -> None:
    dash.login_key(dash.read_key)
    response = dash.client.get("/dashboard/nope")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "no such page" in response.text
    assert dash.client.get("/dashboard/live/nope").json() == {"error": "there is no such page"}
    wrong_method = dash.client.get("/dashboard/logout")
    assert wrong_method.status_code == 405


def test_pages_name_the_event_stream_they_were_given(tmp_path: Path) -> None:
    d = Dash(make_settings(tmp_path))
    with d.client:
        d.login_key(d.read_key)
        # the server wires the dashboard's own relay (cookies, not bearer keys)
        assert 'data-events-url="/dashboard/live/events"' in d.client.get("/dashboard/").text
    settings = make_settings(tmp_path)
    store = MemoryStore()
    submitter = Submitter(settings, store, create_app(settings))
    app = create_dashboard(
        settings, store, submitter, Authenticator(settings, store), events_url="/api/v1/events"
    )
    key, _ = create_key(store, "reader", ["read"])
    with TestClient(app, base_url="http://testserver") as client:
        page = client.get("/login")
        token = csrf_in(page.text)
        client.post("/login", data={"csrf_token": token, "api_key": key})
        assert 'data-events-url="/api/v1/events"' in client.get("/").text


def test_the_event_relay_needs_a_session(tmp_path: Path) -> None:
    d = Dash(make_settings(tmp_path))
    with d.client:
        refused = d.client.get("/dashboard/live/events", follow_redirects=False)
        assert refused.status_code in (302, 303, 401)
        assert "text/event-stream" not in refused.headers.get("content-type", "")
