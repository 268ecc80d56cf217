"""Optional Sentry error reporting (``CONVEYOR_SENTRY_DSN``).

sentry-sdk is an optional dependency (``pip install 'conveyor[sentry]'``). With no
DSN configured nothing is imported; with one, Sentry's Celery and FastAPI
integrations report task failures and API errors.
"""

from __future__ import annotations

import importlib

from conveyor.settings import Settings, SettingsError

INTEGRATIONS = (
    ("celery", "CeleryIntegration"),
    ("starlette", "StarletteIntegration"),
    ("fastapi", "FastApiIntegration"),
)


def init_sentry(settings: Settings) -> bool:
    """Start Sentry when a DSN is configured; returns whether it did."""
    if not settings.sentry_dsn:
        return False
    try:
        # optional dependency: imported only when a DSN is configured
        sdk = importlib.import_module("sentry_sdk")
        integrations = [
            importlib.import_module(f"sentry_sdk.integrations.{module}").__dict__[name]()
            for module, name in INTEGRATIONS
        ]
    except ImportError as exc:
        raise SettingsError(
            "CONVEYOR_SENTRY_DSN is set but sentry-sdk is not installed: "
            "pip install 'conveyor[sentry]'"
        ) from exc
    sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.env,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        send_default_pii=False,
        integrations=integrations,
    )
    return True
