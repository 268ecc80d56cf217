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
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

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


class Transport(filesystem.Transport):  # type: ignore[misc]
    Channel = Channel
