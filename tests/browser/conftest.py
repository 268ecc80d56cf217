"""Browser tests: the dashboard in Debian's Chromium, driven by Playwright.

Never a downloaded browser: Playwright is pointed at ``/usr/bin/chromium``
(``apt-get install chromium``; ``make browser-deps``). Without it the tests skip
locally and fail under ``CI=true``. A real ``conveyor api`` and ``conveyor worker``
run on the embedded broker and SQLite store; screenshots of each page go to
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from conveyor.keys import create_key
from tests.support.procs import free_port
from tests.support.services import in_ci
from tests.support.stack import ROOT, Client, Stack

CHROMIUM = Path(os.environ.get("CONVEYOR_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
SECRET = "browser-test-secret-0123456789abcdefghij"


@dataclass
class Server:
    url: str
    write_key: str
    read_key: str
    client: Client

    def api(self, method: str, path: str, json: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.write_key}"}
        return httpx.request(method, self.url + path, headers=headers, json=json, timeout=10)


def _wait_healthy(url: str, stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in stack.procs), stack.logs()
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"API never answered /healthz:\n{stack.logs()}")


@pytest.fixture(scope="session")
def chromium() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing (apt-get install -y chromium, or `make browser-deps`)"
    if in_ci():
        pytest.fail(message + " (CI=true: browser tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    port = free_port()
    stack = Stack(
        tmp_path_factory.mktemp("browser"),
        {"CONVEYOR_API_PORT": str(port), "CONVEYOR_SECRET_KEY": SECRET},
    )
    result = stack.conveyor("migrate")
    assert result.returncode == 0, result.stderr
    client = Client(stack)
    write_key, _ = create_key(client.store, "operator", ["write"])
    read_key, _ = create_key(client.store, "viewer", ["read"])
    stack.start("api", log_name="api")
    stack.start("worker", "-c", "1", "-P", "threads", log_name="worker")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, stack)
        yield Server(url, write_key, read_key, client)
    finally:
        client.close()
        stack.stop_all()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium: Path) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1280, "height": 900})
    opened.set_default_timeout(15_000)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, url: str, key: str) -> None:
    page.goto(url + "/dashboard/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in with key").click()
    page.wait_for_url(url + "/dashboard/")
