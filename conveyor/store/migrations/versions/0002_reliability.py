"""Reliability: job attempts, dead letters, idempotency and unique keys, replay links.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.String:
    return sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _job_columns() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("retry", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(200), nullable=True))
        batch.add_column(sa.Column("unique_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("replay_of", sa.String(64), nullable=True))
    op.create_index("ix_jobs_idempotency_key", "jobs", ["idempotency_key"], unique=True)
    op.create_index("ix_jobs_unique_key", "jobs", ["unique_key"], unique=True)
    op.create_index("ix_jobs_state_scheduled_for", "jobs", ["state", "scheduled_for"])


def _attempts() -> None:
    op.create_table(
        "job_attempts",
        sa.Column("job_id", _id(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(200), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("started_at", _timestamp(), nullable=True),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "attempt", name="pk_job_attempts"),
    )


def _dead_letters() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("job_id", _id(), nullable=False),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("kwargs", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("retry", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(200), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("dead_at", _timestamp(), nullable=False),
        sa.Column("replayed_at", _timestamp(), nullable=True),
        sa.Column("replayed_job_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_dead_letters"),
    )
    op.create_index("ix_dead_letters_dead_at_job_id", "dead_letters", ["dead_at", "job_id"])
    op.create_index("ix_dead_letters_task_dead_at", "dead_letters", ["task", "dead_at"])
    op.create_index("ix_dead_letters_queue_dead_at", "dead_letters", ["queue", "dead_at"])
    op.create_index("ix_dead_letters_error_type_dead_at", "dead_letters", ["error_type", "dead_at"])


def upgrade() -> None:
    _job_columns()
    _attempts()
    _dead_letters()


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("job_attempts")
    op.drop_index("ix_jobs_state_scheduled_for", table_name="jobs")
    op.drop_index("ix_jobs_unique_key", table_name="jobs")
    op.drop_index("ix_jobs_idempotency_key", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("replay_of")
        batch.drop_column("unique_key")
        batch.drop_column("idempotency_key")
        batch.drop_column("retry")
