"""The SQL job store (SQLAlchemy Core): SQLite for one machine, PostgreSQL in production."""

from __future__ import annotations

import dataclasses
import functools
import os
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    RowMapping,
    Select,
    Update,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from conveyor.jobs import FINAL_STATES, Job, JobEvent, JobState, sources_of
from conveyor.store.base import (
    ApiKey,
    DuplicateJob,
    JobFilter,
    JobPage,
    StoreError,
    TransitionMethods,
    decode_cursor,
    encode_cursor,
)
from conveyor.store.idle_ping import ping_idle_connections
from conveyor.store.observability import created_data
from conveyor.store.schema import api_keys, job_events, jobs
from conveyor.store.sql_copy import on_psycopg
from conveyor.store.sql_dashboard import SqlDashboardMixin
from conveyor.store.sql_event_batch import apply_event_batch
from conveyor.store.sql_flow import SqlFlowMixin
from conveyor.store.sql_job_read import GET_JOB, JobReader
from conveyor.store.sql_observability import SqlObservability
from conveyor.store.sql_prune import SqlPruning
from conveyor.store.sql_reliability import SqlReliabilityMixin
from conveyor.store.sql_schedules import SqlScheduleMixin
from conveyor.store.sql_workflows import SqlWorkflowMixin

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Key of the PostgreSQL advisory lock that serialises concurrent ``migrate`` calls.
MIGRATE_LOCK_KEY = 0x636F6E76  # "conv"

SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)

#: connections a server store keeps open (at most), and how many more it may open briefly
POOL_SIZE = 20
POOL_OVERFLOW = 20
#: write transactions the worker's recorder runs at once on a server database (each on its
#: own pooled connection, well within POOL_SIZE)
PARALLEL_WRITES = 8

JOB_FIELDS = tuple(f.name for f in dataclasses.fields(Job))

# Engines of this process; a forked child must not reuse the parent's connections.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _dispose_engines_in_child() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_engines_in_child)


class SqlStore(
    SqlReliabilityMixin,
    SqlFlowMixin,
    SqlObservability,
    SqlDashboardMixin,
    SqlScheduleMixin,
    SqlWorkflowMixin,
    TransitionMethods,
    SqlPruning,
):
    """JobStore on a SQL database. Safe to share between threads; fork-safe."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
            if parsed.drivername == "postgres":  # the Heroku-style spelling
                parsed = parsed.set(drivername="postgresql+psycopg")
            engine = _create_engine(parsed)
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"invalid job store URL: {exc}") from None
        self._url = parsed
        self._safe_url = parsed.render_as_string(hide_password=True)
        self._is_sqlite = parsed.get_backend_name() == "sqlite"
        #: PostgreSQL gets the set-based statements (arrays, data-modifying CTEs)
        self._is_postgresql = parsed.get_backend_name() == "postgresql"
        self._engine = engine
        self._job_reader = JobReader()
        _ENGINES.add(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def parallel_writes(self) -> int:
        """How many write transactions are worth running at once (SQLite has one write lock)."""
        return 1 if self._is_sqlite else PARALLEL_WRITES

    @property
    def url(self) -> str:
        """The store's URL with the password masked (safe to log)."""
        return self._safe_url

    # -- plumbing ----------------------------------------------------------------
    def _connect(self) -> Connection:
        try:
            return self._engine.connect()
        except DBAPIError as exc:
            raise StoreError(f"job store unreachable at {self._safe_url}: {_reason(exc)}") from exc

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[Connection]:
        """A connection in a transaction, committed on success; driver errors become StoreError.

        On SQLite a write transaction takes the write lock up front (``BEGIN IMMEDIATE``), so
        concurrent writers wait on ``busy_timeout`` instead of failing on a lock upgrade.
        A value that cannot be serialised (depending on the driver, a TypeError before or
        inside SQLAlchemy) rolls the transaction back and becomes StoreError as well.
        """
        with self._connect() as conn, self._store_errors(write), conn.begin():
            if write and self._is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    @contextmanager
    def _store_errors(self, write: bool) -> Iterator[None]:
        """Driver errors become StoreError; so does a value a write cannot serialise."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise StoreError(f"job store error at {self._safe_url}: {_reason(exc)}") from exc
        except (TypeError, ValueError) as exc:
            if not write:
                raise
            # a value the driver cannot serialise (e.g. a non-JSON result); nothing was written
            raise StoreError(f"job store cannot store a value: {exc}") from exc

    @contextmanager
    def _single_read(self) -> Iterator[Connection]:
        """A connection for ONE read statement, outside a transaction (autocommit).

        A read inside ``_tx`` costs a BEGIN and a COMMIT round trip around the statement
        (psycopg sends each on its own); one statement is atomic by itself. Used on the
        worker's hot path (the cancel gate reads every job before it runs).
        """
        with self._single_statement() as conn:
            yield conn

    @contextmanager
    def _single_statement(self, write: bool = False) -> Iterator[Connection]:
        """A connection for ONE statement in autocommit; errors as in ``_tx``.

        Only for a statement that is atomic by itself (a write: one statement, its CTEs
        included, commits or fails as a whole), and never on SQLite, whose writers must take
        the write lock up front (``_tx(write=True)``).
        """
        with self._connect() as conn, self._store_errors(write):
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    # -- lifecycle ---------------------------------------------------------------
    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        url = self._url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        return config

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe to call from many processes at once."""
        config = self._alembic_config()
        with self._tx(write=True) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
            config.attributes["connection"] = conn
            # "heads": each feature's migrations branch from the initial revision
            command.upgrade(config, "heads")

    def is_migrated(self) -> bool:
        heads = _script_heads()
        with self._tx() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        return current == heads

    def ping(self) -> None:
        with self._tx() as conn:
            conn.execute(text("SELECT 1"))

    def close(self) -> None:
        self._engine.dispose()

    # -- jobs --------------------------------------------------------------------
    def _row(self, job: Job) -> dict[str, Any]:
        return _job_row(job)

    def create_job(self, job: Job) -> Job:
        try:
            if self._is_postgresql:
                # the job row and its "created" history row: one statement, one round trip
                params = {f"c_{name}": value for name, value in _job_row(job).items()}
                params["c_data"] = created_data(job)
                with self._single_statement(write=True) as conn:
                    conn.execute(_CREATE_JOB_WITH_EVENT, params)
            else:
                with self._tx(write=True) as conn:
                    conn.execute(_INSERT_JOB, [_job_row(job)])
                    self._insert_created_event(conn, job)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise DuplicateJob(job.id) from None
            raise
        return job

    def delete_job(self, job_id: str) -> None:
        with self._tx(write=True) as conn:
            conn.execute(delete(jobs).where(jobs.c.id == job_id))

    def get_job(self, job_id: str) -> Job | None:
        with self._single_read() as conn:
            if on_psycopg(conn):  # the worker's gate read: through psycopg (sql_job_read)
                return self._job_reader.get(conn, job_id)
            row = conn.execute(GET_JOB, {"b_id": job_id}).first()
        return None if row is None else Job.from_row(dict(row._mapping))

    def list_jobs(self, flt: JobFilter, limit: int, cursor: str | None = None) -> JobPage:
        query = _filtered(select(jobs), flt)
        if cursor is not None:
            created, job_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    jobs.c.created_at < created,
                    and_(jobs.c.created_at == created, jobs.c.id < job_id),
                )
            )
        query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(max(limit, 0) + 1)
        with self._tx() as conn:
            rows = conn.execute(query).all()
        found = [Job.from_row(dict(row._mapping)) for row in rows]
        page = found[: max(limit, 0)]
        more = len(found) > len(page)
        return JobPage(page, encode_cursor(page[-1]) if more and page else None)

    def apply_events(self, events: Sequence[JobEvent]) -> int:
        if not events:
            return 0
        if self._is_postgresql:
            with self._tx(write=True) as conn:
                taken = apply_event_batch(conn, events)
                self._insert_history(conn, taken)
            return len(taken)
        applied: list[JobEvent] = []
        with self._tx(write=True) as conn:
            for job_event in events:
                statement, params = _event_update(job_event)
                took = conn.execute(statement, params).rowcount == 1
                self._on_event(conn, job_event, took)
                if took:
                    applied.append(job_event)
            self._insert_applied_events(conn, applied)
        return len(applied)

    # -- API keys ----------------------------------------------------------------
    def add_api_key(self, key: ApiKey) -> None:
        """Store ``key`` (replacing one with the same id)."""
        try:
            with self._tx(write=True) as conn:
                conn.execute(delete(api_keys).where(api_keys.c.id == key.id))
                conn.execute(insert(api_keys).values(_key_row(key)))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise StoreError(f"an API key with this hash already exists ({key.id})") from None
            raise

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        query = select(api_keys).where(
            api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
        )
        with self._tx() as conn:
            row = conn.execute(query).first()
        return None if row is None else _key_from_row(row._mapping)

    def list_api_keys(self) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [_key_from_row(row._mapping) for row in rows]

    def revoke_api_key(self, key_id: str, at: datetime) -> bool:
        query = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        with self._tx(write=True) as conn:
            return conn.execute(query).rowcount == 1


# -- helpers ---------------------------------------------------------------------
@functools.cache
def _script_heads() -> set[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(config).get_heads())


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {}
        if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = 10
        server = create_engine(
            url,
            connect_args=connect_args,
            # keep enough connections for the API's threadpool under load: a connection
            # beyond the kept ones is opened and closed per use (a PostgreSQL backend each)
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
        )
        # not pool_pre_ping (a round trip per checkout): only a connection idle > 1 s
        ping_idle_connections(server)
        return server
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's (or SQLAlchemy's) message on one line, without the SQL."""
    cause = getattr(exc, "orig", None) or exc
    return " ".join(str(cause).split()) or type(cause).__name__


def _job_row(job: Job) -> dict[str, Any]:
    row = {name: getattr(job, name) for name in JOB_FIELDS}
    row["state"] = job.state.value
    row["args"] = list(job.args)
    row["kwargs"] = dict(job.kwargs)
    row["progress"] = dict(job.progress) if job.progress is not None else None
    return row


def _filtered(query: Select[Any], flt: JobFilter) -> Select[Any]:
    if flt.state is not None:
        query = query.where(jobs.c.state == flt.state.value)
    if flt.task is not None:
        query = query.where(jobs.c.task == flt.task)
    if flt.queue is not None:
        query = query.where(jobs.c.queue == flt.queue)
    return query


# The worker's hot path (one read and one batch of updates per job) runs prebuilt
# statements with bound parameters: SQLAlchemy then skips building the statement and
# its cache key on every call (most of the cost of a small write, measured).
#: a submit's insert (the values come as parameters: compiled once, not per job)
_INSERT_JOB = insert(jobs)
#: PostgreSQL: the job row and, from what it returns, its "created" history row (as
#: ``_insert_created_event`` writes it) in one statement
_CREATED = (
    insert(jobs)
    .values({name: bindparam(f"c_{name}", type_=jobs.c[name].type) for name in JOB_FIELDS})
    .returning(jobs.c.id, jobs.c.task, jobs.c.queue, jobs.c.state, jobs.c.created_at)
    .cte("created")
)
_CREATE_JOB_WITH_EVENT = (
    insert(job_events)
    .from_select(
        ["job_id", "task", "queue", "state", "at", "data"],
        select(
            _CREATED.c.id,
            _CREATED.c.task,
            _CREATED.c.queue,
            _CREATED.c.state,
            _CREATED.c.created_at,
            bindparam("c_data", type_=job_events.c.data.type),
        ),
    )
    .add_cte(_CREATED)
)


def _event_update(job_event: JobEvent) -> tuple[Update, dict[str, Any]]:
    """``UPDATE jobs`` that applies ``job_event`` only when jobs.apply_event would accept it."""
    if job_event.progress is not None:
        return _progress_update(job_event)
    changes = job_event.changes()
    statement = _event_statement(job_event.state, tuple(changes), bool(job_event.attempt))
    params = {f"b_{name}": value for name, value in changes.items()}
    params.update(b_id=job_event.job_id, b_at=job_event.at, b_attempt=job_event.attempt)
    return statement, params


@functools.cache
def _event_statement(state: JobState, columns: tuple[str, ...], check_attempt: bool) -> Update:
    sources = sorted(source.value for source in sources_of(state))
    conditions: list[ColumnElement[bool]] = [
        jobs.c.id == bindparam("b_id"),
        jobs.c.state.in_(sources),
    ]
    if check_attempt:
        conditions.append(jobs.c.attempts <= bindparam("b_attempt"))
    values: dict[str, Any] = {
        name: bindparam(f"b_{name}", type_=jobs.c[name].type) for name in columns
    }
    values["updated_at"] = bindparam("b_at", type_=jobs.c.updated_at.type)
    return update(jobs).where(*conditions).values(state=state.value, **values)


_PROGRESS_UPDATE = (
    update(jobs)
    .where(
        jobs.c.id == bindparam("b_id"),
        jobs.c.state.not_in(sorted(state.value for state in FINAL_STATES)),
    )
    .values(
        progress=bindparam("b_progress", type_=jobs.c.progress.type),
        updated_at=bindparam("b_at", type_=jobs.c.updated_at.type),
    )
)


def _progress_update(job_event: JobEvent) -> tuple[Update, dict[str, Any]]:
    """A progress report: only ``progress`` (and ``updated_at``) of a job not yet final."""
    params = {
        "b_id": job_event.job_id,
        "b_progress": dict(job_event.progress or {}),
        "b_at": job_event.at,
    }
    return _PROGRESS_UPDATE, params


def _key_row(key: ApiKey) -> dict[str, Any]:
    row = {f.name: getattr(key, f.name) for f in dataclasses.fields(ApiKey)}
    row["scopes"] = list(key.scopes)
    return row


def _key_from_row(row: RowMapping) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        key_hash=row["key_hash"],
        scopes=tuple(row["scopes"] or ()),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        prefix=row["prefix"] or "",
    )
