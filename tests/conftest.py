"""Shared test setup: no user configuration leaks into tests."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name.startswith("CONVEYOR_") and not name.startswith("CONVEYOR_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONVEYOR_CONFIG", str(tmp_path_factory.getbasetemp() / "no-conveyor.toml"))


# -- pytest-xdist: which tests may run at the same time ----------------------------------------
# `make test` runs two xdist workers. Each test module stays on one worker (its module-scoped
# stacks start once), and every test that uses the shared Redis / RabbitMQ (fixed Redis DB
# numbers, fixed queue names, purges, FLUSHDB) runs on one and the same worker, one after
# another; their ``embedded`` variants use neither and stay with their module. The groups are
# made from node ids on the controller (a scheduler of our own): xdist's ``--dist loadgroup``
# marks stopped working with pytest 9.2 (pytest-xdist#1386).

#: what a module that talks to the shared Redis / RabbitMQ mentions
SHARED_BROKER_NAMES = ("REDIS_URL", "AMQP_URL", "flush_redis", "tests.support import services")
#: the group of every test that uses them
SHARED_BROKERS_GROUP = "shared-brokers"


@functools.cache
def _mentions_shared_brokers(path: Path) -> bool:
    try:
        text = path.read_text()
    except OSError:
        return False
    return any(name in text for name in SHARED_BROKER_NAMES)


def xdist_group_of(nodeid: str, rootpath: Path) -> str:
    """The shared-brokers group, or the test's module."""
    if nodeid.rfind("@") > nodeid.rfind("]"):  # xdist's own group suffix, once it works again
        nodeid = nodeid[: nodeid.rfind("@")]
    module = nodeid.split("::", 1)[0]
    params = nodeid[nodeid.index("[") + 1 : -1].split("-") if nodeid.endswith("]") else []
    if _mentions_shared_brokers(rootpath / module) and "embedded" not in params:
        return SHARED_BROKERS_GROUP
    return module


@pytest.hookimpl(optionalhook=True)  # (a hook of pytest-xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` groups by :func:`xdist_group_of` (other modes: xdist's own)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 (only when xdist runs)

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid, config.rootpath)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist's loadgroup the shared-brokers group goes first: the longest chain of work."""
    if getattr(config.option, "loadgroup", False):  # (set on xdist workers)
        items.sort(
            key=lambda item: xdist_group_of(item.nodeid, config.rootpath) != SHARED_BROKERS_GROUP
        )
