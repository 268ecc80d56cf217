"""The OAuth bearer token ``push.send`` sends to FCM, from one of three sources.

1. ``CONVEYOR_FCM_ACCESS_TOKEN`` — a static token you refresh yourself.
2. ``CONVEYOR_FCM_SERVICE_ACCOUNT_FILE`` — a Google service-account JSON key: a JWT
   signed with its private key (RS256) is exchanged at the key's ``token_uri`` for
   an access token (the OAuth 2.0 JWT-bearer grant). Needs the optional
   ``cryptography`` package (``pip install conveyor[fcm]``) and access to
   ``token_uri`` (Google's, unless the file points elsewhere).
3. ``CONVEYOR_FCM_TOKEN_URL`` — a URL answering ``GET`` with
   ``{"access_token": …, "expires_in": …}``, such as the GCE metadata server or a
   token sidecar.

Fetched tokens are cached per process until a minute before they expire.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from conveyor.catalog.common import json_body, send
from conveyor.errors import PermanentError, TemporaryError
from conveyor.settings import Settings

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TIMEOUT = 15.0

#: the optional dependency (pip install conveyor[fcm]) is imported when a service account
#: is used, not with the catalog: its native library would sit in every worker process
HAS_CRYPTOGRAPHY = importlib.util.find_spec("cryptography") is not None

_lock = threading.Lock()
_cache: dict[str, tuple[str, float]] = {}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _cached(key: str) -> str | None:
    with _lock:
        hit = _cache.get(key)
    return hit[0] if hit and hit[1] > time.monotonic() else None


def _remember(key: str, response: httpx.Response, source: str) -> str:
    body = json_body(response)
    token = body.get("access_token")
    if response.status_code != 200 or not isinstance(token, str):
        kind = PermanentError if response.status_code in (400, 401, 403) else TemporaryError
        raise kind(f"{source} answered {response.status_code}: {str(body)[:200]}")
    expires_in = body.get("expires_in")
    ttl = float(expires_in) if isinstance(expires_in, (int, float)) else 300.0
    with _lock:
        _cache[key] = (token, time.monotonic() + max(ttl - 60, 0))
    return token


def _service_account(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PermanentError(f"cannot read FCM service account file {path}: {exc}") from exc
    if not isinstance(info, dict) or not {"client_email", "private_key"} <= set(info):
        raise PermanentError(f"{path} is not a service-account key (client_email, private_key)")
    return info


def signed_assertion(info: dict[str, Any], now: float) -> str:
    """An RS256-signed JWT asking ``token_uri`` for a firebase.messaging token."""
    if not HAS_CRYPTOGRAPHY:
        raise PermanentError("service-account auth needs `pip install conveyor[fcm]`")
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: PLC0415

    key = serialization.load_pem_private_key(str(info["private_key"]).encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PermanentError("the service-account private key is not an RSA key")
    header = {"alg": "RS256", "typ": "JWT"}
    if info.get("private_key_id"):
        header["kid"] = str(info["private_key_id"])
    claims = {
        "iss": info["client_email"],
        "scope": SCOPE,
        "aud": info.get("token_uri") or "https://oauth2.googleapis.com/token",
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _from_service_account(path: Path) -> str:
    key = f"sa:{path}"
    token = _cached(key)
    if token is not None:
        return token
    info = _service_account(path)
    token_uri = str(info.get("token_uri") or "https://oauth2.googleapis.com/token")
    form = {"grant_type": GRANT, "assertion": signed_assertion(info, time.time())}
    response = send(httpx.Request("POST", token_uri, data=form), TIMEOUT)
    return _remember(key, response, "the OAuth token endpoint")


def _from_token_url(url: str) -> str:
    key = f"url:{url}"
    token = _cached(key)
    if token is not None:
        return token
    request = httpx.Request("GET", url, headers={"Metadata-Flavor": "Google"})
    return _remember(key, send(request, TIMEOUT), "CONVEYOR_FCM_TOKEN_URL")


def access_token(cfg: Settings) -> str:
    """The bearer token for FCM: static, from a service account, or from a token URL."""
    static = cfg.fcm_access_token.get_secret_value()
    if static:
        return static
    if cfg.fcm_service_account_file is not None:
        return _from_service_account(cfg.fcm_service_account_file)
    if cfg.fcm_token_url:
        return _from_token_url(cfg.fcm_token_url)
    raise PermanentError(
        "FCM credentials are not configured: set CONVEYOR_FCM_ACCESS_TOKEN, "
        "CONVEYOR_FCM_SERVICE_ACCOUNT_FILE or CONVEYOR_FCM_TOKEN_URL"
    )
