"""Observability: job events (live events), completion callbacks.

Revision ID: 0004
Revises: 0001
Create Date: 2025-01-04 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.String:
    return sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def _serial() -> sa.BigInteger:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("jobs", sa.Column("callback_url", sa.String(2000), nullable=True))
    op.create_table(
        "job_events",
        sa.Column("id", _serial(), autoincrement=True, nullable=False),
        sa.Column("job_id", _id(), nullable=False),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_events"),
    )
    op.create_index("ix_job_events_at", "job_events", ["at"])
    op.create_table(
        "callback_deliveries",
        sa.Column("id", _serial(), autoincrement=True, nullable=False),
        sa.Column("job_id", _id(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_callback_deliveries"),
    )
    op.create_index("ix_callback_deliveries_job_id", "callback_deliveries", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_callback_deliveries_job_id", table_name="callback_deliveries")
    op.drop_table("callback_deliveries")
    op.drop_index("ix_job_events_at", table_name="job_events")
    op.drop_table("job_events")
    op.drop_column("jobs", "callback_url")
