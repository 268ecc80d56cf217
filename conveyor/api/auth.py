"""Bearer API-key authentication with scopes: ``Depends(require("write"))``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from conveyor.api.context import ApiContext, Context
from conveyor.api.errors import ApiError
from conveyor.keys import SCOPES, Authenticator, Principal

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    bearerFormat="cvk_…",
    description="An API key in `Authorization: Bearer <key>`. Scopes: read (GET endpoints), "
    "write (submit, cancel, replay), admin (everything); admin implies write implies read.",
)

Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]


def authorize(
    authenticator: Authenticator, credentials: HTTPAuthorizationCredentials | None, scope: str
) -> Principal:
    """The caller, if their key is known and carries ``scope``; raises 401/403 otherwise."""
    if credentials is None:
        raise ApiError(
            401,
            "unauthorized",
            "missing or malformed Authorization header; send `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = authenticator.authenticate(credentials.credentials)
    if principal is None:
        raise ApiError(
            401,
            "invalid_key",
            "unknown or revoked API key",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return _allowed(principal, scope)


def _allowed(principal: Principal, scope: str) -> Principal:
    if not principal.allows(scope):
        raise ApiError(
            403,
            "forbidden",
            f"this API key lacks the {scope!r} scope",
            {"required_scope": scope},
        )
    return principal


def require(
    scope: str,
) -> Callable[[ApiContext, HTTPAuthorizationCredentials | None], Awaitable[Principal]]:
    """A dependency admitting only callers whose key carries ``scope``."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(context: Context, credentials: Credentials) -> Principal:
        # a configured key is checked right here; a key from the store is looked up in the
        # threadpool (it blocks). One thread hop less per request for the common case.
        if credentials is not None:
            configured = context.authenticator.authenticate_configured(credentials.credentials)
            if configured is not None:
                return _allowed(configured, scope)
        return await run_in_threadpool(authorize, context.authenticator, credentials, scope)

    return dependency
