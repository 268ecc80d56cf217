"""Which command lines get gevent/eventlet's monkey patches before conveyor imports anything."""

from __future__ import annotations

import pytest

from conveyor.greenlets import green_pool


@pytest.mark.parametrize(
    ("argv", "pool"),
    [
        (["conveyor", "worker", "-P", "gevent"], "gevent"),
        (["conveyor", "worker", "--pool", "eventlet", "-c", "100"], "eventlet"),
        (["conveyor", "worker", "--pool=gevent"], "gevent"),
        (["conveyor", "worker", "-Pgevent"], "gevent"),
        (["conveyor", "worker", "-P", "threads"], None),
        (["conveyor", "worker"], None),
        (["conveyor", "api", "-P", "gevent"], None),  # only the worker runs a pool
        (["conveyor"], None),
        (["pytest", "-P", "gevent"], None),
    ],
)
def test_pool_from_the_command_line(argv: list[str], pool: str | None) -> None:
    assert green_pool(argv, environ={}) == pool


def test_pool_from_the_environment_unless_the_command_line_says_otherwise() -> None:
    env = {"CONVEYOR_WORKER_POOL": "gevent"}
    assert green_pool(["conveyor", "worker"], environ=env) == "gevent"
    assert green_pool(["conveyor", "worker", "-P", "prefork"], environ=env) is None
    assert green_pool(["conveyor", "api"], environ=env) is None


GEVENT_IO = {"CONVEYOR_QUEUE_POOLS": '{"email": "gevent", "notifications": "gevent"}'}
FORCED = {**GEVENT_IO, "CONVEYOR_WORKER_POOL": "prefork"}
AUTO = {**GEVENT_IO, "CONVEYOR_WORKER_POOL": "auto"}


@pytest.mark.parametrize(
    ("argv", "environ", "pool"),
    [
        (["conveyor", "worker", "-Q", "notifications"], {}, None),  # the default: threads
        (["conveyor", "worker", "-Q", "notifications"], GEVENT_IO, "gevent"),
        (["conveyor", "worker", "--queues", "email,notifications"], GEVENT_IO, "gevent"),
        (["conveyor", "worker", "--queues=email"], GEVENT_IO, "gevent"),
        (["conveyor", "worker", "-Qnotifications", "-c", "50"], GEVENT_IO, "gevent"),
        (["conveyor", "worker", "-Q", "notifications", "-P", "threads"], GEVENT_IO, None),
        (["conveyor", "worker", "-Q", "notifications", "-P", "auto"], GEVENT_IO, "gevent"),
        (["conveyor", "worker", "-Q", "email,default"], GEVENT_IO, None),  # a mix runs prefork
        (["conveyor", "worker", "-Q", "default"], GEVENT_IO, None),
        (["conveyor", "worker"], {**GEVENT_IO, "CONVEYOR_QUEUES": "email,notifications"}, "gevent"),
        (["conveyor", "worker"], GEVENT_IO, None),  # every queue: a mix
        (["conveyor", "worker", "-Q", "email"], FORCED, None),
        (["conveyor", "worker", "-Q", "email"], AUTO, "gevent"),
        (["conveyor", "worker", "-Q", "notifications"], {"CONVEYOR_QUEUE_POOLS": "{bad"}, None),
        (["conveyor", "worker", "-Q", "notifications"], {"CONVEYOR_QUEUE_POOLS": "[1]"}, None),
    ],
)  # fmt: skip
def test_pool_from_the_queues(argv: list[str], environ: dict[str, str], pool: str | None) -> None:
    assert green_pool(argv, environ=environ) == pool
