"""``ConveyorRequest``: the worker's main-process side of every conveyor task's run.

Celery builds one request object per message in the worker's main process; it
acknowledges the message and handles what the pool child cannot (a hard time
limit kills the child). conveyor's request adds two things:

* a hard time limit is handed to ``ConveyorTask.on_failure`` through
  :mod:`conveyor.timeouts`, so the attempt is recorded as failed (``time_limit``);
* in a worker that defers acks (:mod:`conveyor.acks`), the acknowledgement of a run
  the pool finished waits until the recorder has stored it.
  Acks the child has nothing to record for (a hard time limit, a lost worker, a
  message that never reached a child) are sent at once, as Celery does.
"""

from __future__ import annotations

from typing import Any

from billiard.exceptions import Terminated, TimeLimitExceeded, WorkerLostError
from celery.worker.request import Request

from conveyor import acks
from conveyor.timeouts import _current, timeout_info

#: failures the main process sees without the child having recorded anything
_CHILD_GONE = (WorkerLostError, Terminated, TimeLimitExceeded, SystemExit, KeyboardInterrupt)


class ConveyorRequest(Request):  # type: ignore[misc]
    #: the next acknowledgement goes out at once (nothing to wait for)
    conveyor_ack_now = False

    def on_timeout(self, soft: bool, timeout: float) -> None:
        if soft:
            super().on_timeout(soft, timeout)
            return
        self.conveyor_ack_now = True
        info = timeout_info(self.request_dict, self.delivery_info, self.hostname, timeout)
        token = _current.set(info)
        try:
            super().on_timeout(soft, timeout)
        finally:
            _current.reset(token)

    def on_failure(
        self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # unwrap ExceptionWithTraceback
        if isinstance(exc, _CHILD_GONE):
            self.conveyor_ack_now = True
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    def acknowledge(self) -> None:
        held = acks.deferred()
        # only a run the pool took (Celery sets worker_pid then) reports its record
        in_pool = self.worker_pid is not None
        if held is None or self.acknowledged or self.conveyor_ack_now or not in_pool:
            super().acknowledge()
            return
        retries = (self.request_dict or {}).get("retries") or 0
        held.defer(acks.run_key(self.id, int(retries)), self)

    def ack_now(self) -> None:
        super().acknowledge()

    def requeue_now(self) -> None:
        self.reject(requeue=True)

    def ran_in_live_process(self) -> bool:
        return acks.process_alive(self.worker_pid)
