"""Keyset-pagination cursors: an opaque encoding of (timestamp, id) of a page's last row."""

from __future__ import annotations

import base64
from datetime import datetime


def encode_key_cursor(at: datetime, key: str) -> str:
    raw = f"{at.isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of encode_key_cursor; raises ValueError on anything malformed."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at_text, key = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 1)
        at = datetime.fromisoformat(at_text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc
    if at.tzinfo is None:
        raise ValueError(f"invalid cursor {cursor!r}: timestamp without time zone")
    return at, key
