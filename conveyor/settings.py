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

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

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
    worker_pool: Literal["prefork", "threads", "solo", "gevent", "eventlet"] = Field(
        "prefork", description="Celery pool of `conveyor worker`."
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

    # -- reliability: delays, idempotency, dead letters ----------------------------
    delay_threshold: float = Field(
        300,
        ge=0,
        description="countdown/eta up to this many seconds go to the broker as Celery ETA "
        "tasks; longer delays are held in the job store as SCHEDULED and released by the "
        "scheduler when due. Must stay below visibility_timeout.",
    )
    delay_horizon: float = Field(
        365 * 24 * 3600,
        gt=0,
        description="Farthest eta (seconds from now) a submit may ask for (422 beyond).",
    )
    release_interval: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Seconds between two releases of due SCHEDULED jobs by the scheduler.",
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
        if self.default_queue not in self.queues:
            raise ValueError(f"default_queue {self.default_queue!r} is not in queues")
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
