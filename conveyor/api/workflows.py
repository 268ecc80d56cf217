"""``/api/v1/workflows``: run a chain / group / chord of tasks and follow it as a tree."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field

from conveyor.api.auth import require
from conveyor.api.context import Context
from conveyor.api.errors import ApiError, Problem, error_responses, field_errors, problem_for
from conveyor.jobs import Job, JobState
from conveyor.workflow_model import Node, Workflow, WorkflowState
from conveyor.workflows import Step, WorkflowInvalid, advance, start_workflow

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])

EXAMPLE = {
    "chord": [
        {"task": "reports.fetch", "kwargs": {"source": "a"}},
        {"task": "reports.fetch", "kwargs": {"source": "b"}},
    ],
    "body": {"task": "reports.merge", "pass_result": True},
    "on_error": {"task": "email.send", "kwargs": {"to": "ops@example.com"}},
}


SpecBody = Annotated[Step, Body(openapi_examples={"chord": {"value": EXAMPLE}})]


@problem_for.register
def _workflow_invalid(exc: WorkflowInvalid) -> Problem:
    return Problem(422, "invalid_workflow", str(exc), field_errors(exc.errors))


class WorkflowOut(BaseModel):
    """A workflow and its step tree; each task step shows its job's id, state and result."""

    id: str
    state: WorkflowState
    error: str | None
    spec: dict[str, Any]
    tree: dict[str, Any] = Field(
        description="The steps as submitted, each with `state` (PENDING until its job "
        "exists); task steps also with `job_id`, `result` and `error`."
    )
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


_FAILED = {JobState.FAILED.value, JobState.DEAD.value, JobState.CANCELLED.value}


def _combined(states: list[str]) -> str:
    if states and all(s == JobState.SUCCEEDED.value for s in states):
        return JobState.SUCCEEDED.value
    if any(s in _FAILED for s in states):
        return JobState.FAILED.value
    if all(s == "PENDING" for s in states):
        return "PENDING"
    return "RUNNING"


def _annotated(node: Node, jobs: Mapping[str, Job]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if k not in ("steps", "header", "body", "on_error")}
    if node["type"] == "task":
        job = jobs.get(node.get("job_id") or "")
        out["state"] = job.state.value if job else "PENDING"
        out["result"] = job.result if job else None
        out["error"] = job.error if job else None
        return out
    if node["type"] == "chord":
        out["header"] = [_annotated(n, jobs) for n in node["header"]]
        out["body"] = _annotated(node["body"], jobs)
        on_error = node.get("on_error")
        out["on_error"] = _annotated(on_error, jobs) if on_error else None
        parts = [*out["header"], out["body"]]
    else:
        out["steps"] = parts = [_annotated(n, jobs) for n in node["steps"]]
    out["state"] = _combined([p["state"] for p in parts])
    return out


def _out(workflow: Workflow, jobs: list[Job]) -> WorkflowOut:
    return WorkflowOut(
        id=workflow.id,
        state=workflow.state,
        error=workflow.error,
        spec=dict(workflow.spec),
        tree=_annotated(workflow.tree, {job.id: job for job in jobs}),
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
        finished_at=workflow.finished_at,
    )


@router.post(
    "",
    status_code=201,
    dependencies=[Depends(require("write"))],
    responses=error_responses(400, 401, 403, 413, 422, 503),
    summary="Start a workflow",
)
def create_workflow(context: Context, spec: SpecBody) -> WorkflowOut:
    """Start a workflow from a spec of nested `chain`, `group` and `chord` steps.

    Every task step is validated first (unknown task, bad arguments, bad queue):
    a 422 `invalid_workflow` lists each bad step by its path (`loc`) and nothing runs.
    """
    workflow = start_workflow(context.submitter, spec)
    return _out(workflow, context.store.workflow_jobs(workflow.id))


@router.get(
    "/{workflow_id}",
    dependencies=[Depends(require("read"))],
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Get a workflow",
)
def get_workflow(workflow_id: str, context: Context) -> WorkflowOut:
    """The workflow's state and its step tree with each step's state."""
    workflow = context.store.get_workflow(workflow_id)
    if workflow is None:
        raise ApiError(
            404, "workflow_not_found", f"no workflow {workflow_id!r}", {"workflow_id": workflow_id}
        )
    if not workflow.state.is_final:  # catch up, e.g. after a step was cancelled
        workflow = advance(context.submitter, workflow_id) or workflow
    return _out(workflow, context.store.workflow_jobs(workflow_id))
