"""Shared test setup: no user configuration leaks into tests."""

from __future__ import annotations

import os

import pytest

from tests.support import services


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name.startswith("CONVEYOR_") and not name.startswith("CONVEYOR_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONVEYOR_CONFIG", str(tmp_path_factory.getbasetemp() / "no-conveyor.toml"))


#: names a test module imports when it talks to the shared Redis / RabbitMQ (fixed Redis
#: DB numbers, fixed queue names, purges, FLUSHDB)
SHARED_BROKER_NAMES = frozenset({"REDIS_URL", "AMQP_URL", "flush_redis"})
#: the xdist group of every module that uses them: one worker runs them one after another
SHARED_BROKERS_GROUP = "shared-brokers"


def uses_shared_brokers(module: object) -> bool:
    """Conservative: the module imports one of those names, or the services module itself."""
    return any(value is services for value in vars(module).values()) or any(
        getattr(module, name, None) is getattr(services, name) for name in SHARED_BROKER_NAMES
    )


def runs_on_the_embedded_broker(item: pytest.Item) -> bool:
    """A test parametrized with the ``embedded`` deployment (filesystem broker, SQLite)."""
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "embedded" in callspec.params.values()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``pytest -n N --dist loadgroup`` (``make test``): keep each module on one
    worker (its module-scoped stacks start once) and every module that uses the shared
    Redis / RabbitMQ on the same worker, so two of them never run at the same time
    (their ``embedded`` variants excepted: those stay with their module). That group goes
    first: it is the longest chain of work.
    """
    if not config.pluginmanager.hasplugin("xdist") or config.getvalue("dist") != "loadgroup":
        return
    groups: dict[str, str] = {}
    for item in items:
        module = getattr(item, "module", None)
        shared = (
            module is not None
            and uses_shared_brokers(module)
            and not runs_on_the_embedded_broker(item)
        )
        groups[item.nodeid] = SHARED_BROKERS_GROUP if shared else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    items.sort(key=lambda item: groups[item.nodeid] != SHARED_BROKERS_GROUP)
