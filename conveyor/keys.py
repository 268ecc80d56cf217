"""API keys: generation, hashing, scopes, authentication and the local dev key.

Keys are high-entropy random strings (``cvk_`` + 32 random bytes), so a fast
SHA-256 is the right hash: there is nothing to brute-force. Only the hash and
an 8-character display prefix are stored; the plaintext is shown once.

Scopes: ``read`` (GET endpoints), ``write`` (submit, cancel, replay), ``admin``
(everything, including key management). ``admin`` implies ``write`` implies ``read``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from conveyor.jobs import utcnow
from conveyor.settings import Settings
from conveyor.store.base import ApiKey, JobStore

log = structlog.get_logger("conveyor.keys")

KEY_PREFIX = "cvk_"
DISPLAY_PREFIX_LENGTH = 8
SCOPES = ("read", "write", "admin")
DEV_KEY_NAME = "dev"
SETTINGS_PRINCIPAL = "settings"

#: Every scope a scope grants (itself included).
_IMPLIED: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"read", "write"}),
    "admin": frozenset(SCOPES),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request and what they may do (scopes already expanded)."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes in canonical order; raises ValueError on an unknown or empty set."""
    wanted = set(scopes)
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; use {', '.join(SCOPES)}")
    if not wanted:
        raise ValueError(f"at least one scope is required ({', '.join(SCOPES)})")
    return tuple(scope for scope in SCOPES if scope in wanted)


def expand_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Every scope granted by ``scopes`` (admin → write → read); unknown ones are ignored."""
    granted: set[str] = set()
    for scope in scopes:
        granted |= _IMPLIED.get(scope, frozenset())
    return frozenset(granted)


def create_key(store: JobStore, name: str, scopes: Iterable[str]) -> tuple[str, ApiKey]:
    """Create and store a key; returns ``(plaintext, record)``. Only the hash is stored."""
    checked = check_scopes(scopes)
    if not name.strip():
        raise ValueError("a key needs a name")
    plain = generate_key()
    key = ApiKey(
        id=uuid.uuid4().hex,
        name=name.strip(),
        key_hash=hash_key(plain),
        scopes=checked,
        created_at=utcnow(),
        prefix=plain[:DISPLAY_PREFIX_LENGTH],
    )
    store.add_api_key(key)
    log.info("api_key_created", key_id=key.id, name=key.name, scopes=list(checked))
    return plain, key


class Authenticator:
    """Resolves a bearer key to a Principal: configured keys first, then the store."""

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self._settings_hashes = tuple(hash_key(key) for key in settings.api_keys)
        self._store = store
        # a generated dev key must never open a production deployment
        self._dev_keys_allowed = settings.env == "dev"

    def _usable(self, key: ApiKey) -> bool:
        return key.revoked_at is None and (self._dev_keys_allowed or key.name != DEV_KEY_NAME)

    def authenticate(self, plain: str) -> Principal | None:
        if not plain:
            return None
        return self.authenticate_digest(hash_key(plain))

    def authenticate_configured(self, plain: str) -> Principal | None:
        """The caller if ``plain`` is one of the configured keys (CONVEYOR_API_KEYS); no I/O,
        so an async caller needs no thread for it. None: not one of them (ask the store)."""
        if plain and self._is_settings_key(hash_key(plain)):
            return Principal(SETTINGS_PRINCIPAL, frozenset(SCOPES))
        return None

    def authenticate_digest(self, digest: str) -> Principal | None:
        """As ``authenticate``, given the key's hash (what a dashboard session remembers)."""
        if self._is_settings_key(digest):
            return Principal(SETTINGS_PRINCIPAL, frozenset(SCOPES))
        key = self._store.find_api_key(digest)
        if key is None or not self._usable(key):
            return None
        return Principal(key.name, expand_scopes(key.scopes))

    def has_keys(self) -> bool:
        """Whether any key could authenticate at all (configured or live in the store)."""
        if self._settings_hashes:
            return True
        return any(self._usable(key) for key in self._store.list_api_keys())

    def _is_settings_key(self, digest: str) -> bool:
        # compare against every key, without stopping early, in constant time each
        found = False
        for candidate in self._settings_hashes:
            found |= hmac.compare_digest(candidate, digest)
        return found


def ensure_dev_key(settings: Settings, store: JobStore) -> str | None:
    """In dev mode with no key configured, create (or reuse) a local key kept in a 0600 file.

    A dev key from an earlier run whose hash is still live in the store is reused.
    Otherwise returns None when no key is wanted: in production (a key is never
    generated there) or when the user has configured keys of their own.
    """
    if settings.env != "dev":
        return None
    path = settings.dev_key_file
    existing = _read_key_file(path)
    if existing and store.find_api_key(hash_key(existing)) is not None:
        return existing
    if Authenticator(settings, store).has_keys():
        return None
    plain, key = create_key(store, DEV_KEY_NAME, SCOPES)
    _write_private_file(path, plain)
    log.info("dev_key_created", key_id=key.id, path=str(path))
    return plain


def _read_key_file(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _write_private_file(path: Path, content: str) -> None:
    """Write ``content`` to a new file that is never readable by anyone but its owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    # O_EXCL: a file (or symlink) put there in the meantime makes this fail, never leak
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(f"{content}\n")
