"""Metrics computed from the job store: the seed's dict, /api/v1/metrics/tasks and /metrics."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from conveyor.api import create_api
from conveyor.errors import PermanentError, TemporaryError
from conveyor.jobs import JobState, utcnow
from conveyor.keys import create_key
from conveyor.metrics import get_task_metrics
from conveyor.policies.retry import RetryPolicy
from conveyor.settings import Settings, get_settings
from conveyor.store.base import Failure
from conveyor.store.sql import SqlStore
from conveyor.submit import SubmitRequest
from conveyor.task import task
from conveyor.testing import InlineConveyor, inline_settings

KEY = "metrics-test-key-0123456789"
ROOT = Path(__file__).resolve().parents[2]


@task(name="metricstest.ok")
def ok(n: int) -> int:
    return n


@task(name="metricstest.bad", queue="email")
def bad() -> None:
    raise PermanentError("nope")


_runs: dict[str, int] = {}


@task(name="metricstest.flaky", retry=RetryPolicy(max_retries=3, base_delay=0, jitter=False))
def flaky(key: str, fail_times: int) -> int:
    _runs[key] = _runs.get(key, 0) + 1
    if _runs[key] <= fail_times:
        raise TemporaryError("again")
    return _runs[key]


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path, "api_keys": [KEY], "inspect_timeout": 0.1}
    values.update(overrides)
    return inline_settings(**values)


@pytest.fixture
def conveyor(tmp_path: Path) -> InlineConveyor:
    return InlineConveyor(_settings(tmp_path))


def _run_known_jobs(c: InlineConveyor) -> None:
    for n in range(3):
        assert c.submit("metricstest.ok", n).state is JobState.SUCCEEDED
    assert c.submit("metricstest.bad").state is JobState.FAILED
    assert c.submit("metricstest.flaky", uuid.uuid4().hex, 2).state is JobState.SUCCEEDED
    # a job whose retries ran out: DEAD (the dead-letter state)
    dead = c.submitter.store.create_job(
        c.submitter.build(SubmitRequest(task="metricstest.bad")).evolve(
            state=JobState.STARTED, attempts=4
        )
    )
    assert c.store.mark_dead(dead.id, 4, Failure("gave up", "TemporaryError"))


def test_task_metrics_have_the_seed_shape_and_known_values(conveyor: InlineConveyor) -> None:
    _run_known_jobs(conveyor)
    metrics = get_task_metrics(conveyor.store)
    assert set(metrics) == {"total_executed", "total_failed", "total_retried", "by_task"}
    assert metrics["total_executed"] == 6
    assert metrics["total_failed"] == 2
    assert metrics["total_retried"] == 2 + 3
    by_task = metrics["by_task"]
    assert by_task["metricstest.ok"] == {
        "executed": 3,
        "failed": 0,
        "retried": 0,
        "last_execution": by_task["metricstest.ok"]["last_execution"],
    }
    assert by_task["metricstest.ok"]["last_execution"] is not None
    assert by_task["metricstest.bad"]["executed"] == 2
    assert by_task["metricstest.bad"]["failed"] == 2
    assert by_task["metricstest.flaky"] == {
        "executed": 1,
        "failed": 0,
        "retried": 2,
        "last_execution": by_task["metricstest.flaky"]["last_execution"],
    }


def test_get_task_metrics_opens_the_configured_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    c = InlineConveyor(_settings(tmp_path, database_url=url), store=_sql(url))
    assert c.submit("metricstest.ok", 1).state is JobState.SUCCEEDED
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        assert get_task_metrics()["by_task"]["metricstest.ok"]["executed"] == 1
    finally:
        get_settings.cache_clear()


def _sql(url: str) -> SqlStore:
    store = SqlStore(url)
    store.migrate()
    return store


# -- HTTP ---------------------------------------------------------------------------
@pytest.fixture
def client(conveyor: InlineConveyor) -> Iterator[TestClient]:
    app = create_api(conveyor.settings, conveyor.store, conveyor.submitter)
    with TestClient(app) as test_client:
        yield test_client


def _auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_task_metrics_endpoint(conveyor: InlineConveyor, client: TestClient) -> None:
    _run_known_jobs(conveyor)
    assert client.get("/api/v1/metrics/tasks").status_code == 401
    response = client.get("/api/v1/metrics/tasks", headers=_auth())
    assert response.status_code == 200
    assert response.json() == get_task_metrics(conveyor.store)
    assert response.json()["total_executed"] == 6


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families: dict[str, Any], sample_name: str, **labels: str) -> float:
    family_name = sample_name.removesuffix("_total").removesuffix("_bucket")
    family_name = family_name.removesuffix("_count").removesuffix("_sum")
    for sample in families[family_name].samples:
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    raise AssertionError(f"no sample {sample_name} {labels}")


def test_prometheus_metrics_after_known_jobs(conveyor: InlineConveyor, client: TestClient) -> None:
    _run_known_jobs(conveyor)
    response = client.get("/metrics", headers=_auth())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    fams = _families(response.text)
    ok = {"task": "metricstest.ok", "queue": "default"}
    bad = {"task": "metricstest.bad", "queue": "email"}
    assert _value(fams, "conveyor_jobs_submitted_total", **ok) == 3
    assert _value(fams, "conveyor_jobs_submitted_total", **bad) == 2
    assert _value(fams, "conveyor_jobs_finished_total", state="SUCCEEDED", **ok) == 3
    assert _value(fams, "conveyor_jobs_finished_total", state="FAILED", **bad) == 1
    assert _value(fams, "conveyor_jobs_finished_total", state="DEAD", **bad) == 1
    assert _value(fams, "conveyor_job_retries_total", task="metricstest.flaky") == 2
    assert _value(fams, "conveyor_dead_letters", queue="email") == 1
    assert _value(fams, "conveyor_jobs", queue="default", state="SUCCEEDED") == 4
    assert _value(fams, "conveyor_job_run_seconds_count", **ok) == 3
    assert _value(fams, "conveyor_job_run_seconds_bucket", le="+Inf", **ok) == 3
    assert _value(fams, "conveyor_job_queue_wait_seconds_count", **ok) == 3
    for queue in conveyor.settings.queues:
        assert _value(fams, "conveyor_queue_paused", queue=queue) == 0
    assert _value(fams, "conveyor_metrics_source_up", source="store") == 1
    # pausing a queue shows at the next scrape
    conveyor.store.set_queue_paused("email", True, utcnow())
    fams = _families(client.get("/metrics", headers=_auth()).text)
    assert _value(fams, "conveyor_queue_paused", queue="email") == 1
    assert _value(fams, "conveyor_queue_paused", queue="default") == 0


def test_metrics_need_the_read_scope_unless_public(
    conveyor: InlineConveyor, client: TestClient, tmp_path: Path
) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=_auth("not-a-valid-key-at-all")).status_code == 401
    reader, _ = create_key(conveyor.store, "reader", ["read"])
    assert client.get("/metrics", headers=_auth(reader)).status_code == 200
    public = _settings(tmp_path, metrics_public=True)
    app = create_api(public, conveyor.store, conveyor.submitter)
    with TestClient(app) as open_client:
        assert open_client.get("/metrics").status_code == 200


def test_queue_depth_comes_from_the_broker(tmp_path: Path) -> None:
    settings = _settings(tmp_path, broker_url="", database_url="memory://")
    c = InlineConveyor(settings)
    c.submitter.inline = False
    for _ in range(3):
        c.submitter.submit(SubmitRequest(task="metricstest.ok", args=(1,)))
    c.submitter.submit(SubmitRequest(task="metricstest.bad"))
    app = create_api(settings, c.store, c.submitter)
    with TestClient(app) as test_client:
        fams = _families(test_client.get("/metrics", headers=_auth()).text)
    assert _value(fams, "conveyor_queue_depth", queue="default") == 3
    assert _value(fams, "conveyor_queue_depth", queue="email") == 1
    assert _value(fams, "conveyor_queue_depth", queue="analytics") == 0
    assert _value(fams, "conveyor_metrics_source_up", source="broker") == 1


def test_grafana_dashboard_uses_only_served_series(
    conveyor: InlineConveyor, client: TestClient
) -> None:
    _run_known_jobs(conveyor)
    text = client.get("/metrics", headers=_auth()).text
    served = {sample.name for f in text_string_to_metric_families(text) for sample in f.samples}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "conveyor.json").read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used |= set(re.findall(r"conveyor_[a-z_]+", target["expr"]))
    assert used
    assert used <= served, used - served
