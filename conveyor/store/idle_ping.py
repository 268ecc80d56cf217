"""Ping a pooled database connection only when it sat idle in the pool for a while.

``pool_pre_ping`` costs a ``SELECT 1`` round trip before EVERY checkout: two per job on the
worker's hot path (the cancel gate's read and the recorder's write). A connection that was
in use a moment ago is almost certainly still alive, so this pings only a connection that
has been idle in the pool for more than :data:`PING_AFTER_IDLE` seconds, and tells the pool
to replace it when the ping fails (SQLAlchemy's documented "pessimistic" checkout pattern:
raising ``DisconnectionError`` from a ``checkout`` listener makes the pool retry with a new
connection).

Within the window (a connection checked in less than PING_AFTER_IDLE ago whose server went
away) the operation fails once: the driver error is a disconnect, SQLAlchemy invalidates
the connection and every pooled connection opened before it, the store raises StoreError,
and the caller's own retry (the recorder writes again; the cancel gate defers the job) runs
on a fresh connection.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

#: seconds a pooled connection may sit idle and still be handed out without a ping
PING_AFTER_IDLE = 1.0

_IDLE_SINCE = "conveyor_idle_since"


def ping_idle_connections(engine: Engine) -> None:
    """Install the checkin/checkout listeners on ``engine``'s pool."""
    dialect = engine.dialect

    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since <= PING_AFTER_IDLE:
            return  # new, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"idle pooled connection is gone: {exc}") from exc

    event.listen(engine, "checkin", on_checkin)
    event.listen(engine, "checkout", on_checkout)
