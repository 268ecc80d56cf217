"""The job store's tables. The Alembic migrations create exactly these.

Column names equal the field names of :class:`conveyor.jobs.Job` (and
:class:`conveyor.store.base.ApiKey`), so a row maps straight onto the record.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
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


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


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
    Column("callback_url", String(2000), nullable=True),
    Column("retry", JSON(none_as_null=True), nullable=True),
    Column("idempotency_key", String(200), nullable=True),
    Column("unique_key", String(64), nullable=True),
    Column("replay_of", String(64), nullable=True),
    Column("rate_limit", String(64), nullable=True),
    Column("reason", String(64), nullable=True),
    Index("ix_jobs_created_at_id", "created_at", "id"),
    Index("ix_jobs_state_created_at", "state", "created_at"),
    Index("ix_jobs_task_created_at", "task", "created_at"),
    Index("ix_jobs_queue_created_at", "queue", "created_at"),
    Index("ix_jobs_idempotency_key", "idempotency_key", unique=True),
    Index("ix_jobs_unique_key", "unique_key", unique=True),
    Index("ix_jobs_state_scheduled_for", "state", "scheduled_for"),
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

#: The dashboard's throughput chart counts jobs by finish time, from the index alone (0007).
Index("ix_jobs_finished_at_state", jobs.c.finished_at, jobs.c.state)
#: Job counts per queue and state on the overview, from the index alone (migration 0007).
Index("ix_jobs_queue_state", jobs.c.queue, jobs.c.state)


def serial() -> BigInteger:
    """An auto-incrementing 64-bit key (SQLite autoincrements only an INTEGER primary key)."""
    return BigInteger().with_variant(Integer(), "sqlite")


#: Append-only log of job state changes (for Server-Sent Events), written in the same
#: transaction as the change itself and pruned after ``CONVEYOR_EVENTS_RETENTION`` seconds.
job_events = Table(
    "job_events",
    metadata,
    Column("id", serial(), primary_key=True, autoincrement=True),
    Column("job_id", ident(), nullable=False),
    Column("task", String(200), nullable=False),
    Column("queue", String(100), nullable=False),
    Column("state", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_job_events_at", "at"),
)

#: One row per attempt to deliver a job's completion callback.
callback_deliveries = Table(
    "callback_deliveries",
    metadata,
    Column("id", serial(), primary_key=True, autoincrement=True),
    Column("job_id", ident(), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("url", String(2000), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_callback_deliveries_job_id", "job_id"),
)


# -- schedules (the scheduler) ------------------------------------------------------------
schedules = Table(
    "schedules",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("task", String(200), nullable=False),
    Column("cron", String(200), nullable=True),
    Column("interval", Float, nullable=True),
    Column("at", UtcDateTime, nullable=True),
    Column("timezone", String(64), nullable=False),
    Column("args", JSON, nullable=False),
    Column("kwargs", JSON, nullable=False),
    Column("queue", String(100), nullable=True),
    Column("priority", Integer, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("missed", String(16), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("next_run_at", UtcDateTime, nullable=True),
    Column("last_run_at", UtcDateTime, nullable=True),
    Column("last_job_id", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: One row per claimed period: (schedule, due_at) is unique, so one period gives one job.
schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("schedule", String(200), primary_key=True),
    Column("due_at", UtcDateTime, primary_key=True),
    Column("claimed_by", String(200), nullable=False),
    Column("claimed_at", UtcDateTime, nullable=False),
    Column("job_id", String(64), nullable=True),
)

#: Leader leases (the scheduler's, when the broker is not Redis).
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)


#: one row per attempt of a job (a redelivery after a crash is the same attempt)
job_attempts = Table(
    "job_attempts",
    metadata,
    Column("job_id", ident(), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("error", Text, nullable=True),
    Column("error_type", String(200), nullable=True),
    Column("traceback", Text, nullable=True),
    Column("worker", String(200), nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
)

#: everything needed to run a dead job again; keyed by the dead job's id
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("job_id", ident(), primary_key=True),
    Column("task", String(200), nullable=False),
    Column("queue", String(100), nullable=False),
    Column("args", JSON, nullable=False),
    Column("kwargs", JSON, nullable=False),
    Column("priority", Integer, nullable=True),
    Column("retry", JSON(none_as_null=True), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("error_type", String(200), nullable=True),
    Column("traceback", Text, nullable=True),
    Column("reason", String(64), nullable=True),
    Column("dead_at", UtcDateTime, nullable=False),
    Column("replayed_at", UtcDateTime, nullable=True),
    Column("replayed_job_id", String(64), nullable=True),
    Index("ix_dead_letters_dead_at_job_id", "dead_at", "job_id"),
    Index("ix_dead_letters_task_dead_at", "task", "dead_at"),
    Index("ix_dead_letters_queue_dead_at", "queue", "dead_at"),
    Index("ix_dead_letters_error_type_dead_at", "error_type", "dead_at"),
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


#: flow control: one row per rate-limit bucket (its theoretical arrival time, epoch seconds);
#: also the lock row serialising acquires of one concurrency key
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("tat", Float, nullable=True),
)

#: a token a waiting job reserved; it runs on it when it comes back
rate_reservations = Table(
    "rate_reservations",
    metadata,
    Column("job_id", String(200), primary_key=True),
    Column("bucket", String(300), nullable=False),
    Column("due", Float, nullable=False),
)

#: when jobs of a bucket started within its last period (the guard of the rate limit)
rate_starts = Table(
    "rate_starts",
    metadata,
    Column("bucket", String(300), primary_key=True),
    Column("job_id", String(200), primary_key=True),
    Column("at", Float, nullable=False),
)

#: concurrency slots held by running jobs, until ``expires`` (epoch seconds) unless renewed
concurrency_leases = Table(
    "concurrency_leases",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("job_id", String(200), primary_key=True),
    Column("expires", Float, nullable=False),
)

#: paused queues (a queue without a row is consumed)
queue_states = Table(
    "queue_states",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("paused", Boolean, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

#: the queues each worker consumes, reported every few seconds (for ``GET /api/v1/queues``)
queue_consumers = Table(
    "queue_consumers",
    metadata,
    Column("worker", String(200), primary_key=True),
    Column("queue", String(100), primary_key=True),
    Column("seen_at", UtcDateTime, nullable=False),
)
