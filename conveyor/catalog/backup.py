"""``maintenance.backup``: a consistent copy of a database, keeping the N most recent.

PostgreSQL is dumped with ``pg_dump --format=custom`` (restore with
``pg_restore``; ``pg_dump`` must be on the worker's PATH); SQLite is copied with
its online backup API, which is safe while other connections write. Backups go
to ``CONVEYOR_BACKUP_DIR`` (or ``dest``, a folder that must lie inside it) as
``<database>-<UTC timestamp>.<dump|sqlite3>``; older backups of the same
database beyond ``keep`` are deleted.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy.engine import URL, make_url

from conveyor.catalog.common import settings
from conveyor.catalog.database import target_url
from conveyor.errors import PermanentError, TemporaryError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task

PG_DUMP_TIMEOUT = 3300


def backup_folder(dest: str | None, base: Path) -> Path:
    root = base.resolve()
    folder = (root / dest).resolve() if dest else root
    if not folder.is_relative_to(root):
        raise PermanentError(f"dest {dest!r} must be inside CONVEYOR_BACKUP_DIR ({root})")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _sqlite_backup(url: URL, folder: Path) -> Path:
    source = Path(url.database or "")
    if not url.database or url.database == ":memory:" or not source.is_file():
        raise PermanentError(f"no SQLite database file at {url.database!r}")
    target = folder / f"{source.stem}-{_stamp()}.sqlite3"
    try:
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise TemporaryError(f"SQLite backup failed: {exc}") from exc
    return target


def _pg_dump(url: URL, folder: Path) -> Path:
    binary = shutil.which("pg_dump")
    if binary is None:
        raise PermanentError("pg_dump is not installed on this worker (PATH)")
    target = folder / f"{url.database}-{_stamp()}.dump"
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    libpq = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    command = [binary, "--format=custom", "--no-password", f"--file={target}", f"--dbname={libpq}"]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=PG_DUMP_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        target.unlink(missing_ok=True)
        raise TemporaryError("pg_dump timed out") from exc
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        raise TemporaryError(f"pg_dump failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return target


def prune_backups(latest: Path, keep: int) -> list[str]:
    """Delete all but the ``keep`` newest backups of the same database next to ``latest``."""
    prefix = latest.name.rsplit("-", 1)[0] + "-"
    candidates = latest.parent.glob(f"{glob.escape(prefix)}*{latest.suffix}")
    siblings = sorted(
        (p for p in candidates if p.name.rsplit("-", 1)[0] + "-" == prefix),
        key=lambda p: p.name,
        reverse=True,
    )
    removed = []
    for old in siblings[keep:]:
        old.unlink(missing_ok=True)
        removed.append(old.name)
    return removed


@task(
    name="maintenance.backup",
    queue="maintenance",
    retry=RetryPolicy(max_retries=2, base_delay=300.0, retry_on=()),
    time_limit=3600,
    soft_time_limit=3500,
)
def backup(
    dest: Annotated[
        str | None,
        Field(description="Sub-folder of CONVEYOR_BACKUP_DIR (default: the folder itself)."),
    ] = None,
    keep: Annotated[
        int, Field(ge=1, le=1000, description="How many backups of this database to keep.")
    ] = 7,
    database_url: Annotated[
        str | None,
        Field(description="SQLAlchemy URL of the database (default: CONVEYOR_DATABASE_URL)."),
    ] = None,
) -> dict[str, Any]:
    """Back up the database (``database_url`` or the job store's) into the backup folder
    and delete all but the ``keep`` most recent backups of it."""
    url = make_url(target_url(database_url))
    folder = backup_folder(dest, settings().backup_dir)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = _sqlite_backup(url, folder)
    elif backend == "postgresql":
        path = _pg_dump(url, folder)
    else:
        raise PermanentError(f"backups of {backend} databases are not supported")
    removed = prune_backups(path, keep)
    return {"path": str(path), "size": path.stat().st_size, "removed": removed}
