"""Locating the real services tests talk to: skip locally when absent, fail in CI."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
import pytest
import redis

POSTGRES_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _without_db(url: str) -> str:
    """Tests pick their own DB numbers (``f"{REDIS_URL}/4"``): drop a ``/0`` given in the env."""
    parts = urlsplit(url)
    return parts._replace(path="").geturl()


REDIS_URL = _without_db(os.environ.get("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379"))
AMQP_URL = os.environ.get("CONVEYOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _port(url: str, default: int) -> int:
    return urlsplit(url).port or default


PORTS = {
    "postgres": _port(POSTGRES_URL, 5432),
    "redis": _port(REDIS_URL, 6379),
    "rabbitmq": _port(AMQP_URL, 5672),
}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def reachable(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(service: str) -> None:
    """Skip (locally) or fail (CI=true) when ``service`` is not reachable."""
    if reachable(PORTS[service]):
        return
    message = f"{service} is not reachable on 127.0.0.1:{PORTS[service]}"
    if in_ci():
        pytest.fail(message + " (CI=true: service tests must run)")
    pytest.skip(message)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test module; dropped afterwards."""
    require("postgres")
    name = f"conveyor_t_{uuid.uuid4().hex[:12]}"
    admin = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def flush_redis(db: int) -> None:
    require("redis")
    redis.Redis.from_url(f"{REDIS_URL}/{db}").flushdb()
