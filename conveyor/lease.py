"""Leader leases: exactly one of many processes leads, and another takes over when it dies.

With a Redis broker the lease is a Redis key (``SET NX PX`` to take it, a Lua
compare-and-extend to renew it, compare-and-delete to release it). Otherwise it
is a row with an expiry in the job store's ``leases`` table, taken and renewed
with a conditional UPDATE/INSERT.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Protocol

import redis
import structlog

from conveyor.jobs import utcnow
from conveyor.settings import Settings
from conveyor.store.base import JobStore, StoreError

log = structlog.get_logger("conveyor.lease")

REDIS_KEY_PREFIX = "conveyor:lease:"

# renew only our own lease: extend its expiry if the key still holds our id
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def new_holder_id() -> str:
    """A unique id for this process (host, pid and a random part)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease(Protocol):
    name: str
    holder: str
    ttl: float

    def acquire(self) -> bool:
        """Take the lease or renew ours; True when this process holds it now."""
        ...

    def release(self) -> None: ...
    def current_holder(self) -> str | None: ...


class RedisLease:
    def __init__(self, url: str, name: str, holder: str, ttl: float) -> None:
        self.name, self.holder, self.ttl = name, holder, ttl
        self.key = REDIS_KEY_PREFIX + name
        self._redis = redis.Redis.from_url(url, socket_timeout=max(ttl / 3, 1.0))
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    def acquire(self) -> bool:
        millis = int(self.ttl * 1000)
        try:
            if self._renew(keys=[self.key], args=[self.holder, millis]):
                return True
            return bool(self._redis.set(self.key, self.holder, nx=True, px=millis))
        except redis.RedisError as exc:
            log.warning("lease_unavailable", lease=self.name, error=str(exc))
            return False

    def release(self) -> None:
        try:
            self._release(keys=[self.key], args=[self.holder])
        except redis.RedisError as exc:
            log.warning("lease_unavailable", lease=self.name, error=str(exc))
        finally:
            self._redis.close()

    def current_holder(self) -> str | None:
        value = self._redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else None


class StoreLease:
    def __init__(self, store: JobStore, name: str, holder: str, ttl: float) -> None:
        self.name, self.holder, self.ttl = name, holder, ttl
        self._store = store

    def acquire(self) -> bool:
        try:
            return self._store.acquire_lease(self.name, self.holder, self.ttl, utcnow())
        except StoreError as exc:
            log.warning("lease_unavailable", lease=self.name, error=str(exc))
            return False

    def release(self) -> None:
        try:
            self._store.release_lease(self.name, self.holder)
        except StoreError as exc:
            log.warning("lease_unavailable", lease=self.name, error=str(exc))

    def current_holder(self) -> str | None:
        return self._store.lease_holder(self.name, utcnow())


def open_lease(settings: Settings, store: JobStore, name: str, holder: str) -> Lease:
    """A Redis lease when the broker is Redis, else a lease row in the job store."""
    ttl = settings.scheduler_lease_ttl
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return RedisLease(settings.broker_url, name, holder, ttl)
    return StoreLease(store, name, holder, ttl)
