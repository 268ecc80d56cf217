"""A tiny time-based cache for the overview's expensive aggregates (per process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class TtlCache:
    """Remembers each computed value for ``ttl`` seconds; thread-safe, never stale longer."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, ttl: float, compute: Callable[[], T]) -> T:
        now = self._clock()
        with self._lock:
            found = self._values.get(key)
        if found is not None and now - found[0] < ttl:
            value: T = found[1]
            return value
        value = compute()
        with self._lock:
            self._values[key] = (now, value)
        return value
