"""SQL implementation of the workflow store operations (mixed into SqlStore)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from conveyor.jobs import Job
from conveyor.store.base import DuplicateJob, StoreError
from conveyor.store.schema import jobs, workflows
from conveyor.store.sql_copy import copy_jobs, on_psycopg
from conveyor.workflow_model import Workflow

#: rows per INSERT statement in a bulk insert
INSERT_CHUNK = 500


def _workflow_row(workflow: Workflow) -> dict[str, Any]:
    row = {f.name: getattr(workflow, f.name) for f in dataclasses.fields(Workflow)}
    row["state"] = workflow.state.value
    row["spec"] = dict(workflow.spec)
    return row


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), INSERT_CHUNK):
        yield rows[start : start + INSERT_CHUNK]


class SqlWorkflowMixin:
    def _tx(self, write: bool = False) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _row(self, job: Job) -> dict[str, Any]:
        """The jobs row of ``job`` (SqlStore's, so every insert converts values alike)."""
        raise NotImplementedError

    def _insert_created_events(self, conn: Connection, new_jobs: Sequence[Job]) -> None:
        raise NotImplementedError

    def _insert_jobs(self, conn: Connection, new_jobs: Sequence[Job]) -> None:
        if new_jobs and on_psycopg(conn):  # PostgreSQL: COPY, rows and history alike
            copy_jobs(conn, new_jobs)
            return
        for chunk in _chunks([self._row(job) for job in new_jobs]):
            conn.execute(insert(jobs), chunk)
        self._insert_created_events(conn, new_jobs)  # the history starts as create_job's does

    def create_jobs(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        try:
            with self._tx(write=True) as conn:
                self._insert_jobs(conn, jobs)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise DuplicateJob("a job id in the batch is taken") from None
            raise

    def create_workflow(self, workflow: Workflow) -> Workflow:
        try:
            with self._tx(write=True) as conn:
                conn.execute(insert(workflows).values(_workflow_row(workflow)))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise DuplicateJob(workflow.id) from None
            raise
        return workflow

    def get_workflow(self, workflow_id: str) -> Workflow | None:
        with self._tx() as conn:
            row = conn.execute(select(workflows).where(workflows.c.id == workflow_id)).first()
        return None if row is None else Workflow.from_row(dict(row._mapping))

    def workflow_jobs(self, workflow_id: str) -> list[Job]:
        with self._tx() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.workflow_id == workflow_id)).all()
        return [Job.from_row(dict(row._mapping)) for row in rows]

    def advance_workflow(self, workflow: Workflow, new_jobs: Sequence[Job]) -> bool:
        row = _workflow_row(workflow)
        del row["id"], row["created_at"], row["spec"]
        row["version"] = workflow.version + 1
        query = (
            update(workflows)
            .where(workflows.c.id == workflow.id, workflows.c.version == workflow.version)
            .values(**row)
        )
        with self._tx(write=True) as conn:
            if conn.execute(query).rowcount != 1:
                return False
            self._insert_jobs(conn, new_jobs)
        return True
