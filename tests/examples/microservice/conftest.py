"""A fresh PostgreSQL database per module holding the job store and the example's tables,
an InlineConveyor on it, and the example's settings pointed at local stand-ins."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor.testing import InlineConveyor
from examples.microservice.models import create_tables
from tests.examples.support import example_database, inline_conveyor
from tests.support.catalog import Configure, configure
from tests.support.http import Receiver, http_receiver
from tests.support.smtp import Mailbox, smtp_server

__all__ = ["configure"]

IMPORTS = ["examples.microservice.tasks"]


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with example_database(create_tables) as url:
        yield url


@pytest.fixture(scope="module")
def inline(database_url: str) -> Iterator[InlineConveyor]:
    with inline_conveyor(database_url, IMPORTS) as conveyor:
        yield conveyor


@dataclass
class Service:
    inline: InlineConveyor
    backend: Receiver
    mailbox: Mailbox
    temp_dir: Path
    logs_dir: Path


@pytest.fixture
def service(
    inline: InlineConveyor,
    database_url: str,
    configure: Configure,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Service]:
    """The example configured as in production, with a recording backend and SMTP server."""
    temp_dir, logs_dir = tmp_path / "tmp", tmp_path / "logs"
    with http_receiver() as backend, smtp_server(tmp_path) as mailbox:
        monkeypatch.setenv("MICROSERVICE_BACKEND_URL", backend.url)
        monkeypatch.setenv("MICROSERVICE_TEMP_DIR", str(temp_dir))
        monkeypatch.setenv("MICROSERVICE_LOGS_DIR", str(logs_dir))
        configure(
            database_url=database_url,
            smtp_host="127.0.0.1",
            smtp_port=mailbox.port,
            smtp_from="microservice@example.org",
            clean_roots=f"{temp_dir},{logs_dir}",
            reports_dir=tmp_path / "reports",
            backup_dir=tmp_path / "backups",
        )
        yield Service(inline, backend, mailbox, temp_dir, logs_dir)
