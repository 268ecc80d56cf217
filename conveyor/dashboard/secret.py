"""The secret that signs dashboard sessions: configured, or generated once in dev."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import structlog

from conveyor.settings import Settings

log = structlog.get_logger("conveyor.dashboard")


class DashboardConfigError(Exception):
    """The dashboard cannot start with these settings (the message says what to set)."""


def resolve_secret(settings: Settings) -> bytes:
    """``CONVEYOR_SECRET_KEY``; in dev without one, a key kept in data_dir/secret-key (0600)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    if settings.env != "dev":
        raise DashboardConfigError(
            "the dashboard needs CONVEYOR_SECRET_KEY (at least 32 random characters, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`) in production; "
            "or set CONVEYOR_DASHBOARD_ENABLED=false to run the API without it"
        )
    return _dev_secret(settings.secret_key_file)


def _dev_secret(path: Path) -> bytes:
    existing = _read(path)
    if existing:
        return existing.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    try:
        # O_EXCL: never follow or overwrite a file someone else put there
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process was faster: use theirs
        return (_read(path) or value).encode()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(value + "\n")
    log.info("dashboard_secret_created", path=str(path))
    return value.encode()


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
