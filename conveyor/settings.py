"""Every knob conveyor has, read from ``CONVEYOR_*`` environment variables and
an optional ``conveyor.toml``.

With nothing configured, conveyor runs on one machine with no server to
install: kombu's ``filesystem://`` broker and SQLite for the job store and the
result backend, all under ``./var/``.

Precedence (highest first): keyword arguments, environment variables, the TOML
file (``CONVEYOR_CONFIG`` or ``./conveyor.toml``), defaults.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from conveyor.pools import DEFAULT_QUEUE_POOLS, Pool, PoolChoice
from conveyor.schedules import ScheduleSpec, check_name

DEFAULT_QUEUES = (
    "default",
    "email",
    "notifications",
    "analytics",
    "data_processing",
    "maintenance",
    "cleanup",
)
ENV_PREFIX = "CONVEYOR_"
CONFIG_ENV = "CONVEYOR_CONFIG"


def _split_csv(value: Any) -> Any:
    """Accept ``a,b,c`` as well as a list (TOML) for list settings."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _config_file() -> Path:
    return Path(os.environ.get(CONFIG_ENV, "conveyor.toml"))


class Settings(BaseSettings):
    """conveyor's configuration. Each field is ``CONVEYOR_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    # -- deployment ---------------------------------------------------------------
    env: Literal["dev", "production"] = Field(
        "dev",
        description="`dev` prints readable logs and allows a generated dev API key; "
        "`production` logs JSON and requires configured credentials.",
    )
    data_dir: Path = Field(
        Path("var"),
        description="Directory for the embedded defaults: broker folder, SQLite files, dev key.",
    )
    broker_url: str = Field(
        "",
        description="Celery broker URL (`redis://`, `amqp://`). "
        "Empty = kombu `filesystem://` under data_dir.",
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL of the job store (`postgresql+psycopg://…`). "
        "Empty = SQLite file data_dir/conveyor.db.",
    )
    result_backend: str = Field(
        "",
        description="Celery result backend URL. Empty = SQLite file data_dir/results.db.",
    )
    imports: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Python modules holding your @task functions (comma-separated).",
    )

    # -- HTTP API -----------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="Interface the API listens on.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    api_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="API processes serving the port (uvicorn workers). One process uses "
        "one core for its Python work; set it to the machine's cores for throughput "
        "(docs/benchmarks.md: batch submits on 2 cores). Every process reads the same "
        "settings; metrics and history come from the store, so any of them answers alike.",
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API keys accepted in `Authorization: Bearer` (comma-separated, "
        "full access). Keys created with `conveyor keys create` are stored hashed.",
    )
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest request body the API accepts (413 above)."
    )

    # -- Celery -------------------------------------------------------------------
    queues: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_QUEUES),
        description="Queues declared on the broker (comma-separated).",
    )
    default_queue: str = Field("default", description="Queue for tasks without a route.")
    routes: dict[str, str] = Field(
        default_factory=dict,
        description='Task-name glob → queue, e.g. `{"reports.*": "analytics"}` (JSON in env).',
    )
    task_time_limit: float = Field(300, gt=0, description="Hard time limit per task, seconds.")
    task_soft_time_limit: float = Field(
        240, gt=0, description="Soft time limit per task, seconds (raises SoftTimeLimitExceeded)."
    )
    worker_prefetch_multiplier: int = Field(4, ge=1, description="Messages prefetched per slot.")
    worker_max_tasks_per_child: int = Field(
        1000, ge=1, description="Tasks a pool child runs before it is replaced."
    )
    worker_concurrency: int = Field(
        0, ge=0, description="Pool size of `conveyor worker`; 0 = number of CPUs."
    )
    worker_pool: PoolChoice = Field(
        "auto",
        description="Celery pool of `conveyor worker` (`-P` overrides it). `auto` = the pool "
        "of the queues the worker consumes (queue_pools); prefork for a mix of pools.",
    )
    queue_pools: dict[str, Pool] = Field(
        default_factory=lambda: dict(DEFAULT_QUEUE_POOLS),
        description="Queue → Celery pool of the workers that consume it, used when "
        "worker_pool is `auto` (JSON in env, replaces the default map). Queues not named run "
        "on prefork; `gevent` needs `pip install gevent`. `conveyor up` starts one worker "
        "per pool.",
    )
    worker_io_concurrency: int = Field(
        100,
        ge=1,
        description="Pool size of a worker on an I/O pool (threads, gevent, eventlet) chosen "
        "by queue_pools, or named with worker_concurrency 0; `-c` overrides it.",
    )
    result_expires: int = Field(3600, ge=0, description="Seconds a Celery result is kept.")
    visibility_timeout: int = Field(
        3600,
        ge=60,
        description="Redis/SQS visibility timeout: an unacknowledged message is redelivered "
        "after this many seconds.",
    )

    # -- job recording ------------------------------------------------------------
    record_batch_size: int = Field(
        200, ge=1, description="Job state changes written to the store per batch."
    )
    record_flush_interval: float = Field(
        0.05, gt=0, le=10, description="Seconds between batched writes of job state changes."
    )
    result_max_bytes: int = Field(
        64 * 1024, ge=256, description="Largest JSON result stored on a job (bigger: truncated)."
    )

    record_before_ack: bool = Field(
        True,
        description="Wait until a job's final state is stored before its message is "
        "acknowledged, so a crashed worker cannot lose the record of a finished job.",
    )
    task_events: bool = Field(
        False,
        description="Workers send Celery task events from the start (what Flower's live view "
        "shows). Off, as in Celery: `conveyor flower` turns them on in every worker while it "
        "runs (Flower's enable_events). conveyor's dashboard, event stream and metrics read "
        "the job store instead; each event costs a Redis publish in the worker's main process, "
        "the busiest part of a prefork worker (see docs/benchmarks.md).",
    )

    # -- reliability: delays, idempotency, dead letters ----------------------------
    delay_threshold: float = Field(
        300,
        ge=0,
        description="countdown/eta up to this many seconds go to the broker as Celery ETA "
        "tasks; longer delays are held in the job store as SCHEDULED and released by the "
        "scheduler when due. Must stay below visibility_timeout.",
    )
    release_ahead: float = Field(
        0,
        ge=0,
        description="The scheduler releases a held (SCHEDULED) job this many seconds before "
        "it is due, as a Celery ETA task the worker starts on time (what a delay under "
        "delay_threshold always is): a burst of jobs due at one second is then already in "
        "the workers at that second. 0: released when due. Must stay below delay_threshold.",
    )
    delay_horizon: float = Field(
        365 * 24 * 3600,
        gt=0,
        description="Farthest eta (seconds from now) a submit may ask for (422 beyond).",
    )
    idempotency_ttl: float = Field(
        24 * 3600,
        gt=0,
        description="Seconds an idempotency_key keeps returning the job it first created.",
    )
    dead_letter_max_entries: int = Field(
        10_000, ge=1, description="Most dead-letter entries kept (oldest removed first)."
    )
    dead_letter_max_age: float = Field(
        30 * 24 * 3600, gt=0, description="Seconds a dead-letter entry is kept."
    )

    # -- flow control -------------------------------------------------------------
    redis_url: str = Field(
        "",
        description="Redis for rate-limit buckets and concurrency leases when the broker is "
        "not Redis (e.g. RabbitMQ + Redis). Empty: the broker's Redis if it is one, else the "
        "job store (SQL).",
    )
    concurrency_lease: float = Field(
        60.0, gt=1, description="Seconds a concurrency slot is held unless renewed."
    )
    concurrency_retry_delay: float = Field(
        1.0, gt=0, description="Longest wait before a job refused a concurrency slot tries again."
    )
    queue_state_interval: float = Field(
        1.0, gt=0, description="Seconds between two checks of paused queues by each worker."
    )

    # -- logging ------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_format: Literal["auto", "console", "json"] = Field(
        "auto", description="`auto` = console in dev, JSON in production."
    )

    # -- catalog ------------------------------------------------------------------
    smtp_host: str = Field("localhost", description="SMTP server used by `email.*` tasks.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port (25, 587 STARTTLS, 465 SSL).")
    smtp_user: str = Field("", description="SMTP login; empty = no authentication.")
    smtp_password: SecretStr = Field(SecretStr(""), description="SMTP password.")
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        "none", description="`none`, `starttls` (upgrade after connect) or `ssl` (TLS from start)."
    )
    smtp_from: str = Field(
        "conveyor@localhost", description="Sender address (`From:`) of `email.*` tasks."
    )
    smtp_ca_file: Path | None = Field(
        None, description="CA bundle to verify the SMTP server's certificate (default: system CAs)."
    )
    smtp_timeout: float = Field(30, gt=0, description="SMTP connect/command timeout, seconds.")
    email_templates_dir: Path | None = Field(
        None,
        description="Folder of your own email templates (`<name>/<locale>.txt|.html|.subject`).",
    )
    telegram_api_url: str = Field(
        "https://api.telegram.org", description="Telegram Bot API base URL."
    )
    telegram_bot_token: SecretStr = Field(SecretStr(""), description="Telegram bot token.")
    sms_api_url: str = Field(
        "https://api.twilio.com", description="Base URL of the Twilio-compatible SMS API."
    )
    sms_account_sid: str = Field("", description="SMS account SID (basic-auth user).")
    sms_auth_token: SecretStr = Field(SecretStr(""), description="SMS auth token.")
    sms_from: str = Field("", description="Sender number or messaging service of `sms.send`.")
    fcm_api_url: str = Field(
        "https://fcm.googleapis.com", description="Base URL of the FCM HTTP v1 API."
    )
    fcm_project_id: str = Field("", description="Firebase project id of `push.send`.")
    fcm_access_token: SecretStr = Field(
        SecretStr(""), description="Static OAuth bearer token for FCM (takes precedence)."
    )
    fcm_service_account_file: Path | None = Field(
        None,
        description="Google service-account JSON key; its JWT is exchanged at the key's "
        "`token_uri` for an FCM token (needs `conveyor[fcm]`).",
    )
    fcm_token_url: str = Field(
        "",
        description='URL answering `{"access_token": …}` (e.g. a metadata server or token '
        "sidecar), fetched when no static token is set.",
    )
    http_base_url: str = Field(
        "", description="Base URL that relative `http.request` URLs (`/internal/...`) join."
    )
    reports_dir: Path = Field(
        Path("var/reports"), description="Directory `reports.generate` writes to."
    )
    backup_dir: Path = Field(Path("var/backups"), description="Default `maintenance.backup` dir.")
    clean_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories `maintenance.clean_files` may delete in (comma-separated); "
        "empty = none.",
    )

    @field_validator("clean_roots", mode="before")
    @classmethod
    def _csv_roots(cls, value: Any) -> Any:
        return _split_csv(value)

    # -- dashboard ----------------------------------------------------------------
    dashboard_enabled: bool = Field(
        True, description="Serve the dashboard at /dashboard from the API process."
    )
    secret_key: str = Field(
        "",
        description="Secret that signs dashboard session cookies (at least 32 characters). "
        "Empty in dev = generated into data_dir/secret-key (mode 0600); "
        "required in production.",
    )
    dashboard_user: str = Field(
        "",
        description="User name for the dashboard login form (with dashboard_password); "
        "empty = log in with an API key only.",
    )
    dashboard_password: str = Field(
        "",
        description="Password of dashboard_user (at least 12 characters, no default).",
    )
    dashboard_user_scope: Literal["read", "write", "admin"] = Field(
        "write",
        description="Scope of dashboard_user: `read` sees everything and changes nothing.",
    )
    dashboard_session_seconds: int = Field(
        12 * 3600, ge=60, description="Lifetime of a dashboard login session, seconds."
    )

    # -- observability ------------------------------------------------------------
    metrics_public: bool = Field(
        False,
        description="Serve `GET /metrics` without authentication (for a Prometheus that cannot "
        "send a bearer token). Default: an API key with the `read` scope is required.",
    )
    events_retention: float = Field(
        900,
        ge=600,
        description="Seconds job state-change events are kept for `GET /api/v1/events` "
        "(at least 600, so a client can resume after up to 10 minutes).",
    )
    events_poll_interval: float = Field(
        0.25, gt=0, le=0.5, description="Seconds between two polls of the store by an SSE stream."
    )
    webhook_secret: str = Field(
        "",
        description="Secret of the HMAC-SHA256 `X-Conveyor-Signature` on completion callbacks. "
        "Empty = submits with a `callback_url` are refused.",
    )
    callback_timeout: float = Field(
        10, gt=0, le=120, description="Seconds one completion-callback POST may take."
    )
    readyz_require_workers: bool = Field(
        False,
        description="`GET /readyz` also requires at least one worker consuming each queue.",
    )
    inspect_timeout: float = Field(
        1.0, gt=0, le=10, description="Seconds to wait for workers to answer an inspect call."
    )
    sentry_dsn: str = Field(
        "", description="Sentry DSN; empty = Sentry is off and sentry-sdk is never imported."
    )
    sentry_traces_sample_rate: float = Field(
        0.0, ge=0, le=1, description="Share of requests and tasks traced to Sentry."
    )
    flower_user: str = Field("", description="Basic-auth user of `conveyor flower`.")
    flower_password: str = Field("", description="Basic-auth password of `conveyor flower`.")
    flower_host: str = Field("127.0.0.1", description="Interface `conveyor flower` listens on.")
    flower_port: int = Field(5555, ge=1, le=65535, description="Port of `conveyor flower`.")
    flower_oauth_provider: str = Field(
        "",
        description="Flower OAuth provider instead of basic auth, e.g. "
        "`flower.views.auth.GithubLoginHandler` (needs the other flower_oauth_* settings).",
    )
    flower_oauth_key: str = Field("", description="OAuth client id for Flower.")
    flower_oauth_secret: str = Field("", description="OAuth client secret for Flower.")
    flower_oauth_redirect_uri: str = Field("", description="OAuth redirect URI for Flower.")
    flower_auth: str = Field(
        "", description="Regular expression of the e-mail addresses Flower's OAuth admits."
    )

    # -- scheduler ----------------------------------------------------------------
    scheduler_lease_ttl: float = Field(
        15,
        ge=1,
        le=600,
        description="Seconds the scheduler leader's lease lasts: if the leader dies, another "
        "`conveyor scheduler` takes over within this. A run later than this counts as missed.",
    )
    scheduler_tick: float = Field(
        1.0,
        ge=0.05,
        le=1,
        description="Most seconds between two scheduler passes (schedule edits are seen "
        "within this; delayed jobs are released on the same pass).",
    )
    schedules: dict[str, ScheduleSpec] = Field(
        default_factory=dict,
        description="Schedules declared in configuration: `[schedules.<name>]` tables in "
        "conveyor.toml (JSON in env) with task, cron | interval | at, timezone, args, kwargs, "
        "options, enabled, missed. Synced into the job store when a scheduler starts.",
    )

    @field_validator("imports", "api_keys", "queues", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("api_keys")
    @classmethod
    def _keys_long_enough(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if len(key) < 16:
                raise ValueError("every API key must be at least 16 characters long")
        return keys

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, url: str) -> str:
        allowed = ("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://", "filesystem://")
        if url and not url.startswith(allowed) and not url.startswith("memory://"):
            raise ValueError(f"must start with one of {', '.join(allowed)}")
        return url

    @field_validator("schedules")
    @classmethod
    def _schedule_names(cls, schedules: dict[str, ScheduleSpec]) -> dict[str, ScheduleSpec]:
        for name in schedules:
            check_name(name)
        return schedules

    @field_validator("queues")
    @classmethod
    def _queues_not_empty(cls, queues: list[str]) -> list[str]:
        if not queues:
            raise ValueError("at least one queue is required")
        return queues

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError(
                "task_soft_time_limit must be below task_time_limit "
                f"({self.task_soft_time_limit} >= {self.task_time_limit})"
            )
        if self.delay_threshold >= self.visibility_timeout:
            raise ValueError(
                "delay_threshold must be below visibility_timeout "
                f"({self.delay_threshold} >= {self.visibility_timeout}), or the broker "
                "redelivers ETA tasks before they are due"
            )
        if self.release_ahead and self.release_ahead >= self.delay_threshold:
            raise ValueError(
                "release_ahead must be below delay_threshold "
                f"({self.release_ahead} >= {self.delay_threshold})"
            )
        if self.default_queue not in self.queues:
            raise ValueError(f"default_queue {self.default_queue!r} is not in queues")
        return self

    @model_validator(mode="after")
    def _dashboard_coherent(self) -> Settings:
        if bool(self.dashboard_user) != bool(self.dashboard_password):
            raise ValueError("set both dashboard_user and dashboard_password, or neither")
        if self.dashboard_password and len(self.dashboard_password) < 12:
            raise ValueError("dashboard_password must be at least 12 characters long")
        if self.secret_key and len(self.secret_key) < 32:
            raise ValueError("secret_key must be at least 32 characters long")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    # -- derived values -----------------------------------------------------------
    @property
    def is_embedded_broker(self) -> bool:
        return not self.broker_url or self.broker_url.startswith("filesystem://")

    @property
    def broker_folder(self) -> Path:
        return self.data_dir / "broker"

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'conveyor.db').resolve()}"

    @property
    def effective_result_backend(self) -> str:
        return self.result_backend or f"db+sqlite:///{(self.data_dir / 'results.db').resolve()}"

    @property
    def dev_key_file(self) -> Path:
        return self.data_dir / "dev-api-key"

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret-key"

    @property
    def json_logs(self) -> bool:
        if self.log_format == "auto":
            return self.env == "production"
        return self.log_format == "json"


class SettingsError(Exception):
    """Raised with a one-line message naming the setting that is wrong."""


def describe_validation_error(exc: ValidationError) -> str:
    """Turn pydantic's report into one line per bad setting, naming the env variable."""
    lines = []
    for error in exc.errors():
        loc = error.get("loc") or ()
        name = str(loc[0]) if loc else ""
        where = f"{ENV_PREFIX}{name.upper()}" if name else "settings"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(f"invalid setting {where}: {message}")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, raising SettingsError with a one-line message if any is invalid."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()
