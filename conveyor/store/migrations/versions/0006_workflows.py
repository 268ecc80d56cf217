"""Progress reports and workflows: jobs.progress, jobs.workflow_id, the workflows table.

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-21 01:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.String:
    return sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("jobs", sa.Column("progress", sa.JSON(), nullable=True))
    op.add_column("jobs", sa.Column("workflow_id", sa.String(64), nullable=True))
    op.create_index("ix_jobs_workflow_id", "jobs", ["workflow_id"])
    op.create_table(
        "workflows",
        sa.Column("id", _id(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("tree", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workflows"),
    )
    op.create_index("ix_workflows_created_at_id", "workflows", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_workflows_created_at_id", table_name="workflows")
    op.drop_table("workflows")
    op.drop_index("ix_jobs_workflow_id", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("workflow_id")
        batch.drop_column("progress")
