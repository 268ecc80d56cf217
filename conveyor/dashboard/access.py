"""Who is looking at the dashboard: log in with an API key or the configured user."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from conveyor.dashboard.session import Session, SessionSigner
from conveyor.keys import Authenticator, Principal, expand_scopes, hash_key
from conveyor.settings import Settings

KEY_CREDENTIAL = "key:"
USER_CREDENTIAL = "user:"


@dataclass(frozen=True, slots=True)
class Viewer:
    """A logged-in person: what they may do, and their session (for the CSRF token)."""

    principal: Principal
    session: Session

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def can_write(self) -> bool:
        return self.principal.allows("write")


class Access:
    """Turns login form input into a session credential, and a credential into a Principal."""

    def __init__(self, settings: Settings, authenticator: Authenticator, signer: SessionSigner):
        self._settings = settings
        self._authenticator = authenticator
        self._signer = signer

    @property
    def has_user(self) -> bool:
        return bool(self._settings.dashboard_user and self._settings.dashboard_password)

    def _user_credential(self) -> str:
        settings = self._settings
        fingerprint = self._signer.fingerprint(
            settings.dashboard_user, settings.dashboard_password, settings.dashboard_user_scope
        )
        return USER_CREDENTIAL + fingerprint

    def login_with_key(self, api_key: str) -> str | None:
        """The credential to remember for ``api_key``, or None when the key is not valid."""
        digest = hash_key(api_key.strip())
        if not api_key.strip() or self._authenticator.authenticate_digest(digest) is None:
            return None
        return KEY_CREDENTIAL + digest

    def login_with_password(self, user: str, password: str) -> str | None:
        """The credential for the configured user, or None (both compared in constant time)."""
        if not self.has_user:
            return None
        settings = self._settings
        user_ok = hmac.compare_digest(user.encode(), settings.dashboard_user.encode())
        password_ok = hmac.compare_digest(password.encode(), settings.dashboard_password.encode())
        return self._user_credential() if user_ok and password_ok else None

    def principal(self, credential: str) -> Principal | None:
        """Who ``credential`` is now (None once the key is revoked or the password changed)."""
        if credential.startswith(KEY_CREDENTIAL):
            return self._authenticator.authenticate_digest(credential.removeprefix(KEY_CREDENTIAL))
        if self.has_user and hmac.compare_digest(
            credential.encode(), self._user_credential().encode()
        ):
            scopes = expand_scopes([self._settings.dashboard_user_scope])
            return Principal(self._settings.dashboard_user, scopes)
        return None
