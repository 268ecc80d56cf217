"""SYNTHETIC data for ``conveyor up --example microservice`` — generated, not real.

Fake users' processed data (``@example.invalid`` addresses), a CSV to import,
and temporary/log files (some old enough for the cleanup tasks to delete).
Idempotent: a second start adds nothing that is there already.
"""

from __future__ import annotations

import csv
import os
import random
import time
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from examples.microservice.config import MicroserviceSettings
from examples.microservice.models import UserData, create_tables

USERS = 12
DATA_TYPES = ("profile_update", "preferences", "activity")
DAY = 86400.0


def fill_user_data(bind: Engine, rng: random.Random) -> int:
    """Synthetic rows in ``microservice_user_data`` unless it has rows; how many added."""
    with Session(bind) as session, session.begin():
        if session.scalar(select(func.count()).select_from(UserData)):
            return 0
        rows = [
            UserData(
                user_id=user_id,
                data_type=kind,
                data={
                    "synthetic": True,
                    "name": f"Synthetic User {user_id}",
                    "email": f"user{user_id}@example.invalid",
                    "score": rng.randint(0, 100),
                },
            )
            for user_id in range(1, USERS + 1)
            for kind in DATA_TYPES
            if rng.random() < 0.7
        ]
        session.add_all(rows)
        return len(rows)


def write_import_csv(folder: Path, rng: random.Random) -> Path:
    """A CSV for ``batch_data_import_task`` (one row has a bad amount, to be rejected)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "synthetic-records.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "amount"])
        for n in range(1, 21):
            writer.writerow(
                [f"import{n}@example.invalid", f"Synthetic Import {n}", rng.randint(1, 999)]
            )
        writer.writerow(["broken@example.invalid", "Synthetic Broken Row", "not-a-number"])
    return path


def _touch(path: Path, age_seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("synthetic file made by conveyor up --example microservice\n")
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))


def make_files(cfg: MicroserviceSettings) -> None:
    """Temporary files (2 old, 1 fresh) and logs (2 older than 30 days, 1 recent)."""
    _touch(cfg.temp_dir / "upload-0001.tmp", 3 * DAY)
    _touch(cfg.temp_dir / "export" / "report-draft.tmp", 2 * DAY)
    _touch(cfg.temp_dir / "upload-0002.tmp", 60)
    _touch(cfg.logs_dir / "celery-microservice.log.1", 45 * DAY)
    _touch(cfg.logs_dir / "celery-microservice.log.2", 60 * DAY)
    _touch(cfg.logs_dir / "celery-microservice.log", 60)


def prepare(
    bind: Engine, cfg: MicroserviceSettings, data_dir: Path, seed: int = 3
) -> dict[str, object]:
    rng = random.Random(seed)
    create_tables(bind)
    added = fill_user_data(bind, rng)
    csv_path = write_import_csv(data_dir / "microservice" / "imports", rng)
    make_files(cfg)
    return {"user_data_rows": added, "import_csv": str(csv_path)}
