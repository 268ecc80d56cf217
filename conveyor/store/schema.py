"""The job store's tables. The Alembic migrations create exactly these.

Column names equal the field names of :class:`conveyor.jobs.Job` (and
:class:`conveyor.store.base.ApiKey`), so a row maps straight onto the record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, stored as UTC and always read back as aware UTC.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so the value is
    converted to UTC and stored naive (which also keeps text comparison in
    ``ORDER BY``/keyset pagination chronological).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def ident() -> String:
    """A primary key string compared byte-wise on every database (``COLLATE "C"`` on PostgreSQL),
    so ``ORDER BY id`` matches Python's string order, as in the in-memory store."""
    return String(64).with_variant(String(64, collation="C"), "postgresql")


jobs = Table(
    "jobs",
    metadata,
    Column("id", ident(), primary_key=True),
    Column("task", String(200), nullable=False),
    Column("queue", String(100), nullable=False),
    Column("state", String(16), nullable=False),
    Column("args", JSON, nullable=False),
    Column("kwargs", JSON, nullable=False),
    Column("priority", Integer, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("result", JSON(none_as_null=True), nullable=True),
    Column("error", Text, nullable=True),
    Column("error_type", String(200), nullable=True),
    Column("traceback", Text, nullable=True),
    Column("worker", String(200), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("scheduled_for", UtcDateTime, nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_jobs_created_at_id", "created_at", "id"),
    Index("ix_jobs_state_created_at", "state", "created_at"),
    Index("ix_jobs_task_created_at", "task", "created_at"),
    Index("ix_jobs_queue_created_at", "queue", "created_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(128), nullable=False),
    Column("prefix", String(32), nullable=False, server_default=""),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
)


# -- progress reports and workflows (issue 9) ----------------------------------------
jobs.append_column(Column("progress", JSON(none_as_null=True), nullable=True))
jobs.append_column(Column("workflow_id", String(64), nullable=True, index=True))

workflows = Table(
    "workflows",
    metadata,
    Column("id", ident(), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("tree", JSON, nullable=False),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Index("ix_workflows_created_at_id", "created_at", "id"),
)
