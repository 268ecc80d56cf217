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


@pytest.mark.parametrize(
    ("argv", "environ", "pool"),
    [
        (["conveyor", "worker", "-Q", "notifications"], {}, "gevent"),
        (["conveyor", "worker", "--queues", "email,notifications"], {}, "gevent"),
        (["conveyor", "worker", "--queues=email"], {}, "gevent"),
        (["conveyor", "worker", "-Qnotifications", "-c", "50"], {}, "gevent"),
        (["conveyor", "worker", "-Q", "notifications", "-P", "threads"], {}, None),
        (["conveyor", "worker", "-Q", "notifications", "-P", "auto"], {}, "gevent"),
        (["conveyor", "worker", "-Q", "email,default"], {}, None),  # a mix runs prefork
        (["conveyor", "worker", "-Q", "default"], {}, None),
        (["conveyor", "worker"], {"CONVEYOR_QUEUES": "email,notifications"}, "gevent"),
        (["conveyor", "worker", "-Q", "notifications"], {"CONVEYOR_WORKER_POOL": "prefork"}, None),
        (["conveyor", "worker", "-Q", "notifications"], {"CONVEYOR_WORKER_POOL": "auto"}, "gevent"),
        (
            ["conveyor", "worker", "-Q", "notifications"],
            {"CONVEYOR_QUEUE_POOLS": '{"notifications": "threads"}'},
            None,
        ),
        (
            ["conveyor", "worker", "-Q", "analytics"],
            {"CONVEYOR_QUEUE_POOLS": '{"analytics": "gevent"}'},
            "gevent",
        ),
        (["conveyor", "worker", "-Q", "notifications"], {"CONVEYOR_QUEUE_POOLS": "{bad"}, None),
    ],
)
def test_pool_from_the_queues(argv: list[str], environ: dict[str, str], pool: str | None) -> None:
    assert green_pool(argv, environ=environ) == pool
