"""Flow control: rate-limit buckets and reservations, concurrency leases, paused queues.

Revision ID: 0008
Revises: 0001
Create Date: 2025-01-08 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("rate_limit", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(64), nullable=True))
    op.create_table(
        "rate_buckets",
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("tat", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_rate_buckets"),
    )
    op.create_table(
        "rate_reservations",
        sa.Column("job_id", sa.String(200), nullable=False),
        sa.Column("bucket", sa.String(300), nullable=False),
        sa.Column("due", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name="pk_rate_reservations"),
    )
    op.create_table(
        "rate_starts",
        sa.Column("bucket", sa.String(300), nullable=False),
        sa.Column("job_id", sa.String(200), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "job_id", name="pk_rate_starts"),
    )
    op.create_table(
        "concurrency_leases",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("job_id", sa.String(200), nullable=False),
        sa.Column("expires", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", "job_id", name="pk_concurrency_leases"),
    )
    op.create_table(
        "queue_states",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_queue_states"),
    )
    op.create_table(
        "queue_consumers",
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker", "queue", name="pk_queue_consumers"),
    )


def downgrade() -> None:
    op.drop_table("queue_consumers")
    op.drop_table("queue_states")
    op.drop_table("concurrency_leases")
    op.drop_table("rate_starts")
    op.drop_table("rate_reservations")
    op.drop_table("rate_buckets")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("reason")
        batch.drop_column("rate_limit")
