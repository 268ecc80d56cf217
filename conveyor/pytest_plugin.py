"""pytest fixtures for testing conveyor tasks (registered automatically via ``pytest11``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor.testing import InlineConveyor


@pytest.fixture
def conveyor_inline() -> Iterator[InlineConveyor]:
    """An in-process conveyor with an in-memory store; submits run immediately."""
    conveyor = InlineConveyor()
    yield conveyor
    conveyor.store.close()
