"""``maintenance.clean_files``: delete old temp files and logs, only under allowed roots.

``root`` must lie inside one of ``CONVEYOR_CLEAN_ROOTS`` (after resolving
symlinks); with no roots configured the task refuses to delete anything.
Symbolic links are never followed or deleted, and a file whose real path leaves
``root`` is skipped.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from conveyor.catalog.common import Duration, settings
from conveyor.context import progress
from conveyor.errors import PermanentError
from conveyor.policies.retry import RetryPolicy
from conveyor.task import task


def _relative_glob(pattern: str) -> str:
    parts = pattern.replace("\\", "/").split("/")
    if pattern.startswith(("/", "\\")) or ".." in parts or "\x00" in pattern:
        raise ValueError("must be a relative glob without '..', e.g. '*.log' or '**/*.tmp'")
    return pattern


Glob = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_relative_glob)]


def allowed_root(root: str, roots: list[Path]) -> Path:
    """``root`` resolved; PermanentError unless it is inside one of ``roots``."""
    if not roots:
        raise PermanentError("no directory may be cleaned: set CONVEYOR_CLEAN_ROOTS")
    resolved = Path(root).resolve()
    for allowed in roots:
        if resolved.is_relative_to(allowed.resolve()):
            return resolved
    raise PermanentError(f"{root!r} is not under an allowed root (CONVEYOR_CLEAN_ROOTS)")


def _old_files(root: Path, pattern: str, older_than: timedelta) -> list[Path]:
    cutoff = time.time() - older_than.total_seconds()
    found = []
    for path in root.glob(pattern):
        if path.is_symlink() or not path.is_file():
            continue
        if not path.resolve().is_relative_to(root):
            continue
        if path.stat().st_mtime < cutoff:
            found.append(path)
    return sorted(found)


@task(
    name="maintenance.clean_files",
    queue="cleanup",
    retry=RetryPolicy(max_retries=2, base_delay=60.0, retry_on=(OSError,)),
    time_limit=1800,
    soft_time_limit=1740,
)
def clean_files(
    root: Annotated[
        str, Field(description="Folder to clean; must be inside CONVEYOR_CLEAN_ROOTS.")
    ],
    pattern: Annotated[Glob, Field(description="Relative glob, e.g. *.tmp or **/*.log.")],
    older_than: Annotated[
        Duration, Field(description="Files modified longer ago than this are deleted.")
    ],
    dry_run: Annotated[bool, Field(description="Only list what would be deleted.")] = False,
) -> dict[str, Any]:
    """Delete files under ``root`` matching the glob ``pattern`` (e.g. ``*.tmp``,
    ``**/*.log``) last modified more than ``older_than`` ago. ``dry_run`` only lists them."""
    base = allowed_root(root, settings().clean_roots)
    if not base.is_dir():
        return {"root": str(base), "deleted": 0, "bytes": 0, "files": [], "missing": True}
    files = _old_files(base, pattern, older_than)
    freed = 0
    deleted: list[str] = []
    for path in files:
        size = path.stat().st_size
        if not dry_run:
            path.unlink(missing_ok=True)
        freed += size
        deleted.append(str(path.relative_to(base)))
        progress(len(deleted), len(files))
    return {
        "root": str(base),
        "deleted": len(deleted),
        "bytes": freed,
        "files": deleted[:1000],
        "dry_run": dry_run,
    }
