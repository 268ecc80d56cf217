"""Ready-made tasks. Importing this package registers them all.

One module per family: email, telegram, sms, push, webhook and http (messaging and
calls); data and reports (data processing); maintenance, backup, files and history
(database and file maintenance); health. ``docs`` renders docs/catalog.md.
"""

from conveyor.catalog import (
    backup,
    data,
    email,
    fanout,
    files,
    health,
    history,
    http,
    maintenance,
    push,
    reports,
    sms,
    telegram,
    webhook,
)

__all__ = [
    "backup",
    "data",
    "email",
    "fanout",
    "files",
    "health",
    "history",
    "http",
    "maintenance",
    "push",
    "reports",
    "sms",
    "telegram",
    "webhook",
]
