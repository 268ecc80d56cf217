"""``/readyz``: 200 when broker and store are fine, 503 naming each failed check."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from conveyor.api import create_api
from conveyor.engine import create_app
from conveyor.settings import load_settings
from conveyor.store.sql import SqlStore
from conveyor.submit import Submitter
from tests.support.services import reachable

KEY = "readyz-test-key-0123456789"


def _client(tmp_path: Path, broker_url: str, migrate: bool, **extra: object) -> TestClient:
    settings = load_settings(
        data_dir=tmp_path / "var",
        broker_url=broker_url,
        database_url=f"sqlite:///{tmp_path}/ready.db",
        result_backend="cache+memory://",
        api_keys=[KEY],
        inspect_timeout=0.2,
        **extra,
    )
    store = SqlStore(settings.effective_database_url)
    if migrate:
        store.migrate()
    submitter = Submitter(settings, store, create_app(settings))
    return TestClient(create_api(settings, store, submitter))


def test_ready_on_the_embedded_default(tmp_path: Path) -> None:
    response = _client(tmp_path, "", migrate=True).get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"broker": {"ok": True, "error": None}, "store": {"ok": True, "error": None}},
        "failed": [],
    }


def test_not_ready_names_the_failed_checks(tmp_path: Path) -> None:
    port = 1
    assert not reachable(port)
    client = _client(tmp_path, f"redis://127.0.0.1:{port}/0", migrate=False)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["failed"] == ["broker", "store"]
    assert "conveyor migrate" in body["checks"]["store"]["error"]
    assert body["checks"]["broker"]["error"]


def test_requiring_workers_fails_when_none_consumes(tmp_path: Path) -> None:
    client = _client(tmp_path, "", migrate=True, readyz_require_workers=True)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["workers"]
    assert "no worker consumes queue(s): default" in body["checks"]["workers"]["error"]
