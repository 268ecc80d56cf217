"""Dashboard sessions: a signed cookie (HMAC-SHA256) that names a credential, never holds one.

The cookie carries the CSRF token of the session, its expiry and a reference
to the credential used to log in (the API key's hash, or a fingerprint of the
configured user and password). Every request resolves that reference again,
so revoking the key or changing the password ends the session at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE_NAME = "conveyor_session"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True, slots=True)
class Session:
    """What the cookie says. ``credential`` is None before login (the login form's session)."""

    csrf: str
    expires: int
    credential: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Creates, signs and verifies sessions with a key derived from the secret."""

    def __init__(self, secret: bytes, lifetime: int) -> None:
        self._key = hmac.new(secret, b"conveyor.dashboard.session", hashlib.sha256).digest()
        self.lifetime = lifetime

    def new(self, credential: str | None = None) -> Session:
        return Session(
            csrf=secrets.token_urlsafe(32),
            expires=int(time.time()) + self.lifetime,
            credential=credential,
        )

    def logged_in(self, credential: str) -> Session:
        """A fresh session (new CSRF token) for ``credential``: no fixation of the old one."""
        return self.new(credential)

    def dumps(self, session: Session) -> str:
        payload = {"csrf": session.csrf, "exp": session.expires, "cred": session.credential}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def loads(self, cookie: str | None) -> Session | None:
        """The session in ``cookie`` if it is intact and not expired, else None."""
        if not cookie or "." not in cookie:
            return None
        body, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(
                csrf=str(data["csrf"]), expires=int(data["exp"]), credential=data["cred"]
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return session if session.expires > time.time() else None

    def fingerprint(self, *parts: str) -> str:
        """A keyed digest of ``parts`` (e.g. user and password), safe to put in the cookie."""
        message = "\0".join(parts).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())


def csrf_ok(session: Session | None, submitted: str | None) -> bool:
    """Whether ``submitted`` is the CSRF token of ``session`` (constant-time comparison)."""
    if session is None or not submitted:
        return False
    return hmac.compare_digest(session.csrf.encode(), submitted.encode())
