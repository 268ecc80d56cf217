"""The embedded broker: kombu's ``filesystem://`` transport with atomic message writes.

kombu's filesystem channel (5.x) publishes by ``open(name, "wb")`` and then writing the
payload under an ``flock``; its consumer renames the file away and reads it without
taking the lock. A consumer that lists the folder between the producer's ``open`` and
its ``write`` reads an empty or half-written file: ``loads`` fails and the message,
already moved out of the queue folder, is gone (a job stays QUEUED forever). The more
the worker polls while jobs are submitted, the likelier it is.

Here a message is written in full to ``<name>.part`` (a name no consumer and no depth
count matches) and renamed into place: ``rename`` is atomic, so a consumer sees either
no file or the whole message.

The exchange tables (which queues a fanout exchange such as Celery's pidbox reaches)
have the same kind of race in kombu: the first two processes to bind to a new exchange
both open its file with ``"wb"`` (truncating it before taking the lock), and the
second write leaves the tail of the first behind (``JSONDecodeError: Extra data`` in
whoever reads it next: a 500 from ``/api/v1/workers`` was seen). Here a table is
created without truncation, changed under the exclusive lock and truncated after the
write, and an empty (just created) table reads as no bindings.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps, loads

#: Celery's ``broker_transport`` value that selects this transport
TRANSPORT = "conveyor.fsbroker:Transport"


class Channel(filesystem.Channel):  # type: ignore[misc]
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def get_table(self, exchange: str) -> list[Any]:
        file = self._exchange_file(exchange)
        try:
            with open(file, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_SH)
                data = f.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        return [filesystem.exchange_queue_t(*q) for q in (loads(data) if data.strip() else [])]

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)  # never truncates before the lock
            with os.fdopen(fd, "r+b", buffering=0) as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                data = f.read()
                table = [
                    filesystem.exchange_queue_t(*q) for q in (loads(data) if data.strip() else [])
                ]
                if binding not in table:
                    table.insert(0, binding)
                    f.seek(0)
                    f.write(str_to_bytes(dumps(table)))
                    f.truncate()
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc


class Transport(filesystem.Transport):  # type: ignore[misc]
    Channel = Channel
