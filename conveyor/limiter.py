"""Where rate-limit buckets and concurrency leases live: Redis when there is one, else SQL.

Both backends run the same decisions (:mod:`conveyor.policies.ratelimit` and
:mod:`conveyor.policies.concurrency`). On Redis each decision is one atomic Lua
script using the Redis server's clock; on the job store it is one transaction
with the bucket row locked (SQLite: the database write lock; PostgreSQL:
``SELECT ... FOR UPDATE``) using the worker's clock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import redis

from conveyor.policies.concurrency import Slot
from conveyor.policies.ratelimit import DUE_SLACK, MIN_WAIT, Rate
from conveyor.settings import Settings
from conveyor.store.base import JobStore

PREFIX = "conveyor:flow:"

#: KEYS: bucket, reservation, start log.
#: ARGV: interval, tolerance, slack, guard window, cap, job id, min wait.
#: Returns {wait, now} as strings (policies.ratelimit.decide in Lua); ``now`` is the
#: decision time, which the guard logged as the job's start when the wait is 0.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local slack = tonumber(ARGV[3])
local period = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local min_wait = tonumber(ARGV[7])
local keep = math.ceil((period + 3600) * 1000)
local reserved = redis.call('GET', KEYS[2])
if reserved then
  local due = tonumber(reserved)
  if due > now + slack then return {tostring(due - now), tostring(now)} end
else
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < now then tat = now end
  local due = tat - tolerance
  if due < now then due = now end
  local new_tat = tat + interval
  redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now + 60) * 1000))
  if due > now + slack then
    redis.call('SET', KEYS[2], tostring(due), 'PX', math.ceil((due - now) * 1000) + keep)
    return {tostring(due - now), tostring(now)}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - period)
local n = redis.call('ZCARD', KEYS[3])
if n >= cap then
  local entry = redis.call('ZRANGE', KEYS[3], n - cap, n - cap, 'WITHSCORES')
  local wait = tonumber(entry[2]) + period - now
  if wait < min_wait then wait = min_wait end
  redis.call('SET', KEYS[2], tostring(now + wait), 'PX', math.ceil(wait * 1000) + keep)
  return {tostring(wait), tostring(now)}
end
redis.call('ZADD', KEYS[3], now, ARGV[6])
redis.call('PEXPIRE', KEYS[3], math.ceil(period * 1000) + 1000)
redis.call('DEL', KEYS[2])
return {'0', tostring(now)}
"""

#: KEYS: lease set; ARGV: job id, limit, ttl, retry delay. Returns '0' (acquired) or the wait.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local retry = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + 1000)
  return '0'
end
local soonest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(soonest[2]) - now
if wait > retry then wait = retry end
if wait < 0.05 then wait = 0.05 end
return tostring(wait)
"""

#: KEYS: lease sets; ARGV: ttl, then one job id per key. Renews leases still held.
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZSCORE', key, ARGV[i + 1]) then
    redis.call('ZADD', key, now + ttl, ARGV[i + 1])
    redis.call('PEXPIRE', key, math.ceil(ttl * 1000) + 1000)
  end
end
return 0
"""


class Limiter(Protocol):
    backend: str

    def take(self, bucket: str, rate: Rate, job_id: str) -> float:
        """0 when ``job_id`` may run now, else the seconds until its reserved token is due."""
        ...

    def take_at(self, bucket: str, rate: Rate, job_id: str) -> tuple[float, float]:
        """``take``, plus the decision time (epoch seconds): the start the guard logged."""
        ...

    def acquire(self, key: str, job_id: str, limit: int) -> Slot: ...
    def renew(self, leases: Sequence[tuple[str, str]]) -> None: ...
    def release(self, key: str, job_id: str) -> None: ...


class StoreLimiter:
    """Buckets and leases in the job store (embedded SQLite, PostgreSQL, memory)."""

    backend = "store"

    def __init__(self, store: JobStore, lease: float, retry_delay: float) -> None:
        self.store = store
        self.lease = lease
        self.retry_delay = retry_delay

    def take(self, bucket: str, rate: Rate, job_id: str) -> float:
        return self.store.take_rate_token(bucket, rate, job_id)

    def take_at(self, bucket: str, rate: Rate, job_id: str) -> tuple[float, float]:
        before = time.time()
        wait = self.store.take_rate_token(bucket, rate, job_id)
        return wait, before  # the store decides on this clock just after

    def acquire(self, key: str, job_id: str, limit: int) -> Slot:
        return self.store.acquire_slot(key, job_id, limit, self.lease, self.retry_delay)

    def renew(self, leases: Sequence[tuple[str, str]]) -> None:
        self.store.renew_slots(leases, self.lease)

    def release(self, key: str, job_id: str) -> None:
        self.store.release_slot(key, job_id)


class RedisLimiter:
    """Buckets and leases in Redis, each decision one Lua script on the server's clock."""

    backend = "redis"

    def __init__(self, url: str, lease: float, retry_delay: float) -> None:
        self.client: redis.Redis = redis.Redis.from_url(url, socket_timeout=5)
        self.lease = lease
        self.retry_delay = retry_delay
        self._take = self.client.register_script(_TAKE)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._renew = self.client.register_script(_RENEW)

    def take(self, bucket: str, rate: Rate, job_id: str) -> float:
        return self.take_at(bucket, rate, job_id)[0]

    def take_at(self, bucket: str, rate: Rate, job_id: str) -> tuple[float, float]:
        keys = [
            f"{PREFIX}bucket:{bucket}",
            f"{PREFIX}reserved:{job_id}",
            f"{PREFIX}starts:{bucket}",
        ]
        args: list[str | float] = [
            rate.interval,
            rate.tolerance,
            DUE_SLACK,
            rate.guard_window,
            rate.count + rate.burst,
            job_id,
            MIN_WAIT,
        ]
        wait, now = self._take(keys=keys, args=args)
        return float(wait), float(now)

    def acquire(self, key: str, job_id: str, limit: int) -> Slot:
        args: list[str | float] = [job_id, limit, self.lease, self.retry_delay]
        wait = float(self._acquire(keys=[f"{PREFIX}lease:{key}"], args=args))
        return Slot(wait <= 0, wait)

    def renew(self, leases: Sequence[tuple[str, str]]) -> None:
        if leases:
            keys = [f"{PREFIX}lease:{key}" for key, _ in leases]
            args: list[str | float] = [self.lease, *(job_id for _, job_id in leases)]
            self._renew(keys=keys, args=args)

    def release(self, key: str, job_id: str) -> None:
        self.client.zrem(f"{PREFIX}lease:{key}", job_id)


def redis_url_for(settings: Settings) -> str | None:
    """The Redis holding flow-control state, or None to use the job store."""
    if settings.redis_url:
        return settings.redis_url
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return settings.broker_url
    return None


def open_limiter(settings: Settings, store: JobStore) -> Limiter:
    url = redis_url_for(settings)
    lease, retry = settings.concurrency_lease, settings.concurrency_retry_delay
    if url is not None:
        return RedisLimiter(url, lease, retry)
    return StoreLimiter(store, lease, retry)
