"""Connection settings every service shares, read from the environment at start-up."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def asyncpg_url(url: str) -> str:
    """Accepts the `postgresql://` URLs operators write and returns the SQLAlchemy asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must start with postgresql://, got {url.split(':', 1)[0]!r}")


def libpq_url(url: str) -> str:
    """The plain `postgresql://` form asyncpg itself (LISTEN, COPY) wants."""
    return "postgresql://" + asyncpg_url(url)[len("postgresql+asyncpg://") :]


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        description="PostgreSQL URL; every service keeps its own schema in this database.",
    )
    database_pool_size: int = 10

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        asyncpg_url(value)
        return value


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Tansu auto-creates topics with 4 partitions; matching it keeps the key-to-partition
    # mapping stable even if a client reaches a restarted broker before the topics are recreated.
    cartera_partitions: int = Field(default=4, ge=1)
    cartera_replication_factor: int = Field(default=1, ge=1)
    kafka_enable_idempotence: bool = False
    # Short sessions: a group join (and a dead member's eviction) takes about half a session.
    kafka_session_timeout_ms: int = 6_000
    kafka_heartbeat_interval_ms: int = 1_000
    # How far back the outbox is republished when the broker comes back empty.
    cartera_replay_window_s: int = Field(default=24 * 3600, ge=0)


class ServiceSettings(DatabaseSettings, KafkaSettings):
    """Base for each service's settings; subclasses add an env prefix for their own knobs."""

    cartera_host: str = "127.0.0.1"
    cartera_log_level: str = "INFO"
    cartera_consumer_batch: int = Field(default=2000, ge=1)
    cartera_relay_batch: int = Field(default=2000, ge=1)
    cartera_outbox_retention_s: int = Field(default=7 * 24 * 3600, ge=0)
    # How long a consumer remembers an event id. Longer than ingest's intake retention (30 days),
    # so a replay of the intake log is still recognised event by event.
    cartera_inbox_retention_s: int = Field(default=35 * 24 * 3600, ge=0)
