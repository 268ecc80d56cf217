"""Polling until something holds, for tests that watch real processes."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    detail: Callable[[], str] = lambda: "",
) -> None:
    """Return once ``condition()`` holds; AssertionError naming ``what`` (and ``detail()``,
    e.g. the processes' logs) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    extra = detail()
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{extra}" if extra else ""))
