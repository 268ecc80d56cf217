"""Dashboard: index jobs by finish time (throughput chart) and by queue and state (counts).

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-21 01:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_finished_at_state", "jobs", ["finished_at", "state"])
    op.create_index("ix_jobs_queue_state", "jobs", ["queue", "state"])


def downgrade() -> None:
    op.drop_index("ix_jobs_queue_state", table_name="jobs")
    op.drop_index("ix_jobs_finished_at_state", table_name="jobs")
