"""Configure the catalog tasks for a test: they read settings when they run."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from conveyor.settings import get_settings

Configure = Callable[..., None]


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """``configure(smtp_port=2525, ...)`` sets ``CONVEYOR_*`` variables for this test."""

    def apply(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"CONVEYOR_{name.upper()}", str(value))
        get_settings.cache_clear()

    get_settings.cache_clear()
    yield apply
    get_settings.cache_clear()
