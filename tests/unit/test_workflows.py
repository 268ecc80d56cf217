"""Workflows driven by conveyor: chain, group, chord, failures, error callbacks, the API."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from conveyor.api import create_api
from conveyor.engine import create_app
from conveyor.jobs import Job, JobState
from conveyor.keys import create_key
from conveyor.store.base import JobFilter
from conveyor.store.sql import SqlStore
from conveyor.submit import Submitter
from conveyor.testing import InlineConveyor, inline_settings
from conveyor.workflow_model import Workflow, WorkflowState
from conveyor.workflows import WorkflowInvalid, advance, evaluate, start_workflow


@pytest.fixture
def inline() -> InlineConveyor:
    return InlineConveyor(inline_settings(imports=["tests.support.tasks"]))


def steps(workflow: Workflow, inline: InlineConveyor) -> dict[str, Job]:
    """The step jobs by their path in the spec."""
    jobs = {job.id: job for job in inline.store.workflow_jobs(workflow.id)}
    found: dict[str, Job] = {}

    def walk(node: dict[str, Any]) -> None:
        if node["type"] == "task":
            if node["job_id"]:
                found[".".join(str(p) for p in node["loc"])] = jobs[node["job_id"]]
            return
        subs = node.get("steps") or [*node.get("header", []), node.get("body")]
        subs += [node["on_error"]] if node.get("on_error") else []
        for sub in subs:
            if sub is not None:
                walk(sub)

    walk(workflow.tree)
    return found


def run(inline: InlineConveyor, spec: dict[str, Any]) -> Workflow:
    workflow = start_workflow(inline.submitter, spec)
    current = inline.store.get_workflow(workflow.id)
    assert current is not None
    return current


def test_chain_passes_results_only_when_asked(inline: InlineConveyor) -> None:
    workflow = run(
        inline,
        {
            "chain": [
                {"task": "tests.add", "args": [1, 2]},
                {"task": "tests.add", "args": [10], "pass_result": True},
                {"task": "tests.add", "args": [100, 1]},
            ]
        },
    )
    assert workflow.state is WorkflowState.SUCCEEDED
    jobs = steps(workflow, inline)
    assert [jobs[f"chain.{i}"].result for i in range(3)] == [3, 13, 101]
    assert jobs["chain.1"].args == (3, 10)
    assert all(job.workflow_id == workflow.id for job in jobs.values())


def test_failing_step_stops_the_chain(inline: InlineConveyor) -> None:
    with capture_logs() as logs:
        workflow = run(
            inline,
            {
                "chain": [
                    {"task": "tests.add", "args": [1]},
                    {"task": "tests.fail", "args": ["boom"]},
                    {"task": "tests.add", "args": [2]},
                ]
            },
        )
    assert workflow.state is WorkflowState.FAILED
    assert workflow.error is not None and "chain.1" in workflow.error and "boom" in workflow.error
    jobs = steps(workflow, inline)
    assert set(jobs) == {"chain.0", "chain.1"}  # the third step never ran
    assert jobs["chain.1"].state is JobState.FAILED
    assert "workflow_failed" in [e["event"] for e in logs]


def test_chord_body_gets_the_header_results(inline: InlineConveyor) -> None:
    workflow = run(
        inline,
        {
            "chord": [
                {"task": "tests.add", "args": [1, 1]},
                {"chain": [{"task": "tests.add", "args": [2]}, {"task": "tests.add", "args": [3]}]},
                {"group": [{"task": "tests.add", "args": [4]}]},
            ],
            "body": {"task": "tests.echo", "args": ["x"], "pass_result": False},
        },
    )
    assert workflow.state is WorkflowState.SUCCEEDED
    jobs = steps(workflow, inline)
    assert jobs["body"].result == {"value": "x"}


def test_chord_sums_with_pass_result(inline: InlineConveyor) -> None:
    spec = {
        "chord": [{"task": "tests.add", "args": [n]} for n in range(5)],
        "body": {"task": "tests.total", "pass_result": True},
    }
    workflow = run(inline, spec)
    assert workflow.state is WorkflowState.SUCCEEDED
    assert steps(workflow, inline)["body"].result == 10


def test_failed_chord_header_runs_error_callback_and_does_not_hang(
    inline: InlineConveyor,
) -> None:
    spec = {
        "chord": [{"task": "tests.add", "args": [1]}, {"task": "tests.fail", "args": ["no"]}],
        "body": {"task": "tests.total", "pass_result": True},
        "on_error": {"task": "tests.record_error", "pass_result": True, "kwargs": {"marker": "m"}},
    }
    workflow = run(inline, spec)
    assert workflow.state is WorkflowState.FAILED
    jobs = steps(workflow, inline)
    assert "body" not in jobs
    callback = jobs["on_error"]
    assert callback.state is JobState.SUCCEEDED
    assert callback.result["marker"] == "m"
    assert "chord.1" in callback.result["received"]["error"]


def test_group_collects_results_in_order(inline: InlineConveyor) -> None:
    workflow = run(
        inline,
        {
            "chain": [
                {"group": [{"task": "tests.add", "args": [n, n]} for n in range(3)]},
                {"task": "tests.total", "pass_result": True},
            ]
        },
    )
    assert steps(workflow, inline)["chain.1"].result == 6


def test_every_step_is_validated_up_front_and_nothing_runs(inline: InlineConveyor) -> None:
    spec = {
        "chain": [
            {"task": "tests.add", "args": ["not a number"]},
            {"group": [{"task": "tests.nope"}]},
            {"task": "tests.add", "pass_result": True},  # x comes from the chain: fine
            {"task": "tests.add", "args": [1], "queue": "no-such-queue"},
        ]
    }
    with pytest.raises(WorkflowInvalid) as caught:
        start_workflow(inline.submitter, spec)
    locs = [e["loc"] for e in caught.value.errors]
    assert ["chain", 0, "x"] in locs
    assert ["chain", 1, "group", 0, "task"] in locs
    assert ["chain", 3, "queue"] in locs
    assert not any(loc[:2] == ["chain", 2] for loc in locs)
    assert inline.store.list_jobs(JobFilter(), 10).items == []


def test_evaluate_waits_for_running_header_and_starts_body_once() -> None:
    tree = {
        "type": "chord",
        "loc": [],
        "header": [
            {"type": "task", "loc": ["chord", i], "job_id": f"j{i}", "pass_result": False}
            for i in range(2)
        ],
        "body": {"type": "task", "loc": ["body"], "job_id": None, "pass_result": True},
        "on_error": None,
    }
    done = Job(id="j0", task="t", queue="q", state=JobState.SUCCEEDED, result=1)
    running = Job(id="j1", task="t", queue="q", state=JobState.STARTED)
    outcome, starts = evaluate(tree, {"j0": done, "j1": running})
    assert outcome.status == "running" and starts == []
    finished = running.evolve(state=JobState.SUCCEEDED, result=2)
    outcome, starts = evaluate(tree, {"j0": done, "j1": finished})
    assert outcome.status == "running"
    assert [(node["loc"], value) for node, value in starts] == [(["body"], [1, 2])]


def test_advance_is_idempotent(inline: InlineConveyor) -> None:
    workflow = run(inline, {"group": [{"task": "tests.add", "args": [1]}]})
    count = len(inline.store.workflow_jobs(workflow.id))
    again = advance(inline.submitter, workflow.id)
    assert again is not None and again.version == workflow.version
    assert len(inline.store.workflow_jobs(workflow.id)) == count


# -- over HTTP ----------------------------------------------------------------------------
@pytest.fixture
def api(inline: InlineConveyor) -> Iterator[tuple[TestClient, str]]:
    app = create_api(inline.settings, inline.store, inline.submitter)
    key, _ = create_key(inline.store, "w", ["write"])
    with TestClient(app) as client:
        yield client, key


def test_post_and_get_workflow_over_http(api: tuple[TestClient, str]) -> None:
    client, key = api
    headers = {"Authorization": f"Bearer {key}"}
    spec = {
        "chain": [
            {"task": "tests.add", "args": [1, 2]},
            {
                "chord": [{"task": "tests.add", "args": [1]}],
                "body": {"task": "tests.total", "pass_result": True},
            },
        ]
    }
    created = client.post("/api/v1/workflows", json=spec, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["state"] == "SUCCEEDED"
    got = client.get(f"/api/v1/workflows/{body['id']}", headers=headers).json()
    tree = got["tree"]
    assert tree["state"] == "SUCCEEDED"
    first = tree["steps"][0]
    assert first["state"] == "SUCCEEDED" and first["result"] == 3
    job = client.get(f"/api/v1/jobs/{first['job_id']}", headers=headers).json()
    assert job["workflow_id"] == body["id"]


def test_invalid_workflow_is_422_pointing_at_the_step(api: tuple[TestClient, str]) -> None:
    client, key = api
    headers = {"Authorization": f"Bearer {key}"}
    spec = {"group": [{"task": "tests.add", "args": [1]}, {"task": "tests.add", "args": ["x"]}]}
    response = client.post("/api/v1/workflows", json=spec, headers=headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_workflow"
    assert error["details"][0]["loc"] == ["group", 1, "x"]
    shape = client.post("/api/v1/workflows", json={"chain": []}, headers=headers)
    assert shape.status_code == 422
    assert shape.json()["error"]["code"] == "invalid_request"
    missing = client.get("/api/v1/workflows/nope", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "workflow_not_found"


def test_concurrent_advances_submit_the_chord_body_once(tmp_path: Path) -> None:
    settings = inline_settings(
        imports=["tests.support.tasks"], database_url=f"sqlite:///{tmp_path}/w.db"
    )
    store = SqlStore(settings.database_url)
    store.migrate()
    submitter = Submitter(settings, store, create_app(settings))
    spec = {
        "chord": [{"task": "tests.add", "args": [n]} for n in range(4)],
        "body": {"task": "tests.total", "pass_result": True},
    }
    workflow = start_workflow(submitter, spec)  # publishes the header to memory://
    for job in store.workflow_jobs(workflow.id):
        store.mark_started(job.id, 1, "w")
        store.mark_succeeded(job.id, 1, 1)
    barrier = threading.Barrier(6)

    def advance_at_once() -> None:
        barrier.wait()
        advance(submitter, workflow.id)

    threads = [threading.Thread(target=advance_at_once) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bodies = [job for job in store.workflow_jobs(workflow.id) if job.task == "tests.total"]
    store.close()
    assert len(bodies) == 1
    assert bodies[0].args == ([1, 1, 1, 1],)
