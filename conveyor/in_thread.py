"""One call run in a thread of its own, its result (or error) collected later."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class InThread(Generic[T]):
    """Starts ``fn(*args, **kwargs)`` in a new daemon thread; ``result()`` waits for it and
    returns its value or raises its error. A thread per call: for calls that take
    milliseconds (a bulk insert), where starting a thread costs microseconds."""

    def __init__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller of result()
                self._error = exc

        self._thread = threading.Thread(target=run, name="conveyor-in-thread", daemon=True)
        self._thread.start()

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
