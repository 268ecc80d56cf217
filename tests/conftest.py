"""Shared test setup: no user configuration leaks into tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name.startswith("CONVEYOR_") and not name.startswith("CONVEYOR_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONVEYOR_CONFIG", str(tmp_path_factory.getbasetemp() / "no-conveyor.toml"))
