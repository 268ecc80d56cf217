"""Workflows driven by conveyor itself: chain, group and chord over normal jobs.

A workflow is a tree of steps stored with the workflow record; every task step
becomes a normal job linked to it (``Job.workflow_id``). Nothing is left to
Celery's canvas: whenever a step job reaches a final state, ``advance`` re-reads
the workflow and its jobs, works out which steps may start now and submits them
through the Submitter, with optimistic locking on the workflow so two workers
finishing steps at the same moment never submit a step twice and never both
miss it (each writes its job's final state before it evaluates; the later one
sees both). A chord whose header has a failed job therefore cannot hang: once
every header job is final, the error callback runs and the workflow fails.

See docs/workflows.md for the spec format and the result-passing rules.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import structlog
from kombu.exceptions import OperationalError as KombuOperationalError
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from conveyor.errors import ArgumentsInvalid, ConveyorError, SubmitRefused, TaskNotFound
from conveyor.jobs import Job, JobState, utcnow
from conveyor.submit import SubmitRequest, Submitter
from conveyor.workflow_model import Node, Workflow, WorkflowState, new_workflow_id

log = structlog.get_logger("conveyor.workflows")

#: attempts at writing one advance before giving up (another process wins each time)
MAX_ADVANCE_ATTEMPTS = 20


class TaskStep(BaseModel):
    """One job: a task by name with its arguments."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=200, description="Registered task name.")
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    pass_result: bool = Field(
        False,
        description="Prepend the previous step's result (in a chain; a chord body gets the "
        "list of header results) as the first positional argument.",
    )
    queue: str | None = None
    priority: int | None = Field(None, ge=0, le=9)


class ChainStep(BaseModel):
    """Steps one after the other; a failing step stops the chain."""

    model_config = ConfigDict(extra="forbid")

    chain: list[Step] = Field(min_length=1, max_length=1000)


class GroupStep(BaseModel):
    """Steps in parallel; its result is the list of their results."""

    model_config = ConfigDict(extra="forbid")

    group: list[Step] = Field(min_length=1, max_length=1000)


class ChordStep(BaseModel):
    """A group (the header) and a body that runs once every header step succeeded."""

    model_config = ConfigDict(extra="forbid")

    chord: list[Step] = Field(min_length=1, max_length=1000, description="The header.")
    body: Step
    on_error: TaskStep | None = Field(
        None, description="Runs when a header step failed (once all are finished)."
    )


def _step_kind(value: Any) -> str | None:
    if isinstance(value, Mapping):
        keys: Any = value.keys()
    elif isinstance(value, BaseModel):
        keys = type(value).model_fields
    else:
        return None  # not an object (null, a list, ...): refused as an invalid step
    for kind in ("task", "chain", "group", "chord"):
        if kind in keys:
            return kind
    return None


Step = Annotated[
    Annotated[TaskStep, Tag("task")]
    | Annotated[ChainStep, Tag("chain")]
    | Annotated[GroupStep, Tag("group")]
    | Annotated[ChordStep, Tag("chord")],
    Discriminator(
        _step_kind,
        custom_error_type="invalid_step",
        custom_error_message="a step has exactly one of `task`, `chain`, `group`, `chord`",
    ),
]

for _model in (ChainStep, GroupStep, ChordStep):
    _model.model_rebuild()


class WorkflowInvalid(ConveyorError):
    """One or more steps cannot run; ``errors`` point at each step (``loc``)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
        super().__init__(f"invalid workflow: {where}")
        self.errors = errors


# -- the tree ------------------------------------------------------------------------
def build_tree(step: BaseModel, loc: tuple[str | int, ...] = ()) -> Node:
    """The stored tree for a validated spec (task nodes without jobs yet)."""
    if isinstance(step, TaskStep):
        return {"type": "task", "loc": list(loc), **step.model_dump(), "job_id": None}
    if isinstance(step, ChainStep | GroupStep):
        kind = "chain" if isinstance(step, ChainStep) else "group"
        steps = step.chain if isinstance(step, ChainStep) else step.group
        return {
            "type": kind,
            "loc": list(loc),
            "steps": [build_tree(s, (*loc, kind, i)) for i, s in enumerate(steps)],
        }
    assert isinstance(step, ChordStep)
    return {
        "type": "chord",
        "loc": list(loc),
        "header": [build_tree(s, (*loc, "chord", i)) for i, s in enumerate(step.chord)],
        "body": build_tree(step.body, (*loc, "body")),
        "on_error": build_tree(step.on_error, (*loc, "on_error")) if step.on_error else None,
    }


_PLACEHOLDER = object()


def request_for(node: Node, value: Any = _PLACEHOLDER) -> SubmitRequest:
    args = list(node["args"])
    if node["pass_result"] and value is not _PLACEHOLDER:
        args.insert(0, value)
    return SubmitRequest(
        task=node["task"],
        args=args,
        kwargs=node["kwargs"],
        queue=node["queue"],
        priority=node["priority"],
    )


def _step_errors(submitter: Submitter, node: Node) -> list[dict[str, Any]]:
    """What is wrong with one task step (its first argument is unknown yet if pass_result)."""
    loc = node["loc"]
    try:
        spec = submitter.tasks.get(node["task"])
        receives = node["pass_result"]
        first = next(iter(spec.params.model_fields), None) if receives else None
        submitter.build(request_for(node, None if receives else _PLACEHOLDER))
    except TaskNotFound as exc:
        return [{"loc": [*loc, "task"], "msg": str(exc), "type": "task_not_found"}]
    except SubmitRefused as exc:
        return [{"loc": [*loc, exc.field or "task"], "msg": str(exc), "type": "submit_refused"}]
    except ArgumentsInvalid as exc:
        errors = [e for e in exc.errors if first is None or list(e.get("loc", ()))[:1] != [first]]
        return [
            {"loc": [*loc, *e.get("loc", ())], "msg": str(e.get("msg")), "type": str(e["type"])}
            for e in errors
        ]
    return []


def validate_tree(submitter: Submitter, tree: Node) -> None:
    """Raise WorkflowInvalid listing every step that could not be submitted."""
    errors: list[dict[str, Any]] = []
    for node in _task_nodes(tree):
        errors += _step_errors(submitter, node)
    if errors:
        raise WorkflowInvalid(errors)


def _task_nodes(node: Node) -> list[Node]:
    if node["type"] == "task":
        return [node]
    if node["type"] == "chord":
        subs = [*node["header"], node["body"]]
        subs += [node["on_error"]] if node.get("on_error") else []
    else:
        subs = node["steps"]
    return [t for sub in subs for t in _task_nodes(sub)]


# -- evaluation ----------------------------------------------------------------------
Status = Literal["running", "succeeded", "failed"]


@dataclass
class Outcome:
    status: Status
    result: Any = None
    error: str | None = None


@dataclass
class Evaluation:
    """What evaluating the tree against the jobs found: the steps to start now."""

    jobs: Mapping[str, Job]
    starts: list[tuple[Node, Any]] = field(default_factory=list)

    def node(self, node: Node, value: Any) -> Outcome:
        kind = node["type"]
        if kind == "task":
            return self.task(node, value)
        if kind == "chain":
            return self.chain(node["steps"], value)
        if kind == "group":
            return self.group(node["steps"], value)
        return self.chord(node, value)

    def task(self, node: Node, value: Any) -> Outcome:
        job = self.jobs.get(node["job_id"]) if node.get("job_id") else None
        if job is None:
            if not node.get("job_id"):
                self.starts.append((node, value))
            return Outcome("running")
        if job.state is JobState.SUCCEEDED:
            return Outcome("succeeded", job.result)
        if job.state.is_final:
            where = ".".join(str(p) for p in node["loc"]) or "root"
            reason = f": {job.error}" if job.error else ""
            return Outcome("failed", error=f"step {where} ({job.task}) {job.state}{reason}")
        return Outcome("running")

    def chain(self, steps: Sequence[Node], value: Any) -> Outcome:
        outcome = Outcome("succeeded", value)
        for step in steps:
            outcome = self.node(step, value)
            if outcome.status != "succeeded":
                return outcome
            value = outcome.result
        return outcome

    def group(self, steps: Sequence[Node], value: Any) -> Outcome:
        outcomes = [self.node(step, value) for step in steps]
        if any(o.status == "running" for o in outcomes):
            return Outcome("running")
        failed = [o for o in outcomes if o.status == "failed"]
        if failed:
            return Outcome("failed", error=failed[0].error)
        return Outcome("succeeded", [o.result for o in outcomes])

    def chord(self, node: Node, value: Any) -> Outcome:
        header = self.group(node["header"], value)
        if header.status == "succeeded":
            return self.node(node["body"], header.result)
        if header.status == "failed" and node.get("on_error") is not None:
            where = ".".join(str(p) for p in node["loc"]) or "root"
            callback = self.task(node["on_error"], {"error": header.error, "step": where})
            if callback.status == "running":
                return Outcome("running")
        return header


def evaluate(tree: Node, jobs: Mapping[str, Job]) -> tuple[Outcome, list[tuple[Node, Any]]]:
    """The workflow's outcome and the steps that may start now (with their input)."""
    evaluation = Evaluation(jobs)
    outcome = evaluation.node(tree, _PLACEHOLDER)
    return outcome, evaluation.starts


_STATES: Mapping[Status, WorkflowState] = {
    "running": WorkflowState.RUNNING,
    "succeeded": WorkflowState.SUCCEEDED,
    "failed": WorkflowState.FAILED,
}


# -- driving it ----------------------------------------------------------------------
def start_workflow(submitter: Submitter, spec: Mapping[str, Any] | BaseModel) -> Workflow:
    """Validate every step, record the workflow and submit its first steps."""
    step = _parse(spec)
    tree = build_tree(step)
    validate_tree(submitter, tree)
    raw = step.model_dump(mode="json", exclude_defaults=True)
    workflow = Workflow(new_workflow_id(), WorkflowState.RUNNING, raw, tree)
    submitter.store.create_workflow(workflow)
    log.info("workflow_started", workflow_id=workflow.id, steps=len(_task_nodes(tree)))
    return advance(submitter, workflow.id) or workflow


def _parse(spec: Mapping[str, Any] | BaseModel) -> BaseModel:
    if isinstance(spec, TaskStep | ChainStep | GroupStep | ChordStep):
        return spec
    holder = WorkflowSpec.model_validate({"spec": spec})
    return holder.spec


class WorkflowSpec(BaseModel):
    spec: Step


def _next(submitter: Submitter, workflow: Workflow) -> tuple[Workflow, list[Job]]:
    """The workflow after one evaluation, and the step jobs to create."""
    tree = copy.deepcopy(workflow.tree)
    jobs = {job.id: job for job in submitter.store.workflow_jobs(workflow.id)}
    outcome, starts = evaluate(tree, jobs)
    new_jobs: list[Job] = []
    for node, value in starts:
        try:
            job = submitter.build(request_for(node, value)).evolve(workflow_id=workflow.id)
        except (ArgumentsInvalid, SubmitRefused, TaskNotFound) as exc:
            where = ".".join(str(p) for p in node["loc"]) or "root"
            outcome, new_jobs = Outcome("failed", error=f"step {where} refused: {exc}"), []
            break
        node["job_id"] = job.id
        new_jobs.append(job)
    state = _STATES[outcome.status]
    now = utcnow()
    updated = workflow.evolve(
        tree=tree,
        state=state,
        error=outcome.error,
        updated_at=now,
        finished_at=now if state.is_final else None,
    )
    return updated, new_jobs


def advance(submitter: Submitter, workflow_id: str) -> Workflow | None:
    """Bring the workflow up to date with its jobs; submit the steps that may start now."""
    store = submitter.store
    for _ in range(MAX_ADVANCE_ATTEMPTS):
        workflow = store.get_workflow(workflow_id)
        if workflow is None or workflow.state.is_final:
            return workflow
        updated, new_jobs = _next(submitter, workflow)
        unchanged = not new_jobs and updated.state is workflow.state
        if unchanged:
            return workflow
        if store.advance_workflow(updated, new_jobs):
            _log_advance(updated, new_jobs)
            _enqueue(submitter, new_jobs)
            return store.get_workflow(workflow_id)
    log.warning("workflow_advance_contended", workflow_id=workflow_id)
    return store.get_workflow(workflow_id)


def _log_advance(workflow: Workflow, new_jobs: list[Job]) -> None:
    for job in new_jobs:
        log.info("workflow_step_submitted", workflow_id=workflow.id, job_id=job.id, task=job.task)
    if workflow.state.is_final:
        succeeded = workflow.state is WorkflowState.SUCCEEDED
        log.info(
            "workflow_succeeded" if succeeded else "workflow_failed",
            workflow_id=workflow.id,
            error=workflow.error,
        )


def _enqueue(submitter: Submitter, new_jobs: list[Job]) -> None:
    for job in new_jobs:
        try:
            submitter.enqueue(job)
        except (KombuOperationalError, OSError) as exc:
            # the job stays QUEUED in the store; cancel it so the workflow does not wait forever
            log.warning("workflow_step_unsent", job_id=job.id, error=str(exc))
            submitter.store.mark_cancelled(job.id)
            advance(submitter, job.workflow_id or "")
