"""The one settings class, read from `PARTNERLOOP_*` environment variables."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, IPvAnyNetwork, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_NAMES = ("secret_key", "encryption_key", "identity_hash_key")
PLACEHOLDERS = {"", "changeme", "change-me", "secret", "development", "dev"}
MIN_SECRET_LENGTH = 32


class Environment(StrEnum):
    development = "development"
    production = "production"


class SettingsError(RuntimeError):
    """Settings that would make the service unsafe or unable to start."""


class Settings(BaseSettings):
    """Everything the service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="PARTNERLOOP_", env_file=".env", extra="ignore")

    environment: Environment = Environment.development
    database_url: str = "sqlite:///partnerloop.db"
    base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    # Signs cursors, links and CSRF tokens.
    secret_key: SecretStr = SecretStr("")
    # Encrypts secrets we must read back (partners' OAuth secrets, signing keys).
    encryption_key: SecretStr = SecretStr("")
    # Keys the HMAC of customers' normalized emails.
    identity_hash_key: SecretStr = SecretStr("")
    # Where the embedded default keeps the secrets it generated for itself.
    secrets_file: Path = Path(".partnerloop-secrets.json")
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    max_upload_bytes: Annotated[int, Field(ge=1024)] = 512 * 1_048_576
    idempotency_ttl_seconds: Annotated[int, Field(ge=60)] = 24 * 3600
    access_token_ttl_seconds: Annotated[int, Field(ge=60, le=900)] = 900
    refresh_token_ttl_seconds: Annotated[int, Field(ge=3600)] = 30 * 24 * 3600
    signing_key_rotation_days: Annotated[int, Field(ge=1)] = 30
    login_attempts_per_minute: Annotated[int, Field(ge=1)] = 5
    cors_origins: list[str] = []
    # Token buckets per authenticated caller (tenant and API client or staff member), and per client
    # address for unauthenticated sign-up and token requests: N a minute, bursts of up to `burst`.
    rate_limit_per_minute: Annotated[int, Field(ge=1)] = 1200
    rate_limit_burst: Annotated[int, Field(ge=1)] = 200
    public_rate_limit_per_minute: Annotated[int, Field(ge=1)] = 120
    public_rate_limit_burst: Annotated[int, Field(ge=1)] = 30
    # Share the buckets between API replicas (redis://host:6379/0); unset: each process counts alone.
    redis_url: str | None = None
    # Outbound calls to partners' URLs (webhooks): networks exempt from the public-address guard,
    # for tests and local demos only, e.g. ["127.0.0.0/8"] (partners.egress).
    egress_allowlist: list[IPvAnyNetwork] = []
    # One webhook attempt: connect timeout, and a hard deadline for the whole call.
    webhook_connect_timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5.0
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 15.0
    # How long a worker holds a delivery it is attempting; must outlast the deadline above.
    webhook_lease_seconds: Annotated[float, Field(gt=0)] = 60.0
    webhook_max_response_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    webhook_disable_after_days: Annotated[float, Field(gt=0)] = 5.0
    webhook_batch_size: Annotated[int, Field(ge=1, le=100)] = 20
    # PostgreSQL connections each API process keeps for the exchange's hot path. More than the cores
    # PostgreSQL can give each process only adds backends competing for them: with PostgreSQL on
    # the same 2 cores, 2 kept p99 at 15-19 ms where 10 gave 29-77 ms, at equal throughput
    # (docs/performance.md). Raise it when PostgreSQL runs on a larger machine of its own.
    exchange_pool_size: Annotated[int, Field(ge=1, le=100)] = 2
    # The bearer token Prometheus sends to scrape GET /metrics; unset, /metrics is off (404).
    metrics_token: SecretStr | None = None
    # Peers whose X-Forwarded-For/-Proto uvicorn believes: comma-separated addresses or networks
    # ("172.16.0.0/12"), or "*". Behind a proxy in another container this must name the proxy, or
    # every client has the proxy's address and shares its login throttle and rate limits.
    forwarded_allow_ips: str = "127.0.0.1"
    # The embedded SQLite default migrates itself when the app starts; `partnerloop serve`, which
    # has migrated already, turns this off for its workers.
    migrate_on_start: bool = True

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.production

    @property
    def issuer(self) -> str:
        return self.base_url.rstrip("/")

    @model_validator(mode="after")
    def _forwarded_peers_parse(self) -> Self:
        # uvicorn would silently take a malformed entry (or a "*" among others) as a literal that
        # never matches, and trust nobody: refuse it at start instead.
        if self.forwarded_allow_ips.strip() == "*":
            return self
        for entry in self.forwarded_allow_ips.split(","):
            try:
                ipaddress.ip_network(entry.strip())
            except ValueError as exc:
                raise SettingsError(
                    f"PARTNERLOOP_FORWARDED_ALLOW_IPS: {entry.strip()!r} is not an address or network; "
                    "give comma-separated addresses or networks (such as 10.0.0.0/8), or * alone"
                ) from exc
        return self

    @model_validator(mode="after")
    def _lease_outlasts_attempt(self) -> Self:
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds + 1:
            raise SettingsError("PARTNERLOOP_WEBHOOK_LEASE_SECONDS must exceed WEBHOOK_TIMEOUT_SECONDS by over 1 s")
        return self

    @model_validator(mode="after")
    def _fail_closed(self) -> Self:
        if not self.is_production:
            return self
        for name in SECRET_NAMES:
            value = getattr(self, name).get_secret_value()
            if value.lower() in PLACEHOLDERS or len(value) < MIN_SECRET_LENGTH:
                raise SettingsError(
                    f"PARTNERLOOP_{name.upper()} must be set to a random value of at least "
                    f"{MIN_SECRET_LENGTH} characters in production "
                    "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
        token = self.metrics_token.get_secret_value() if self.metrics_token is not None else None
        if token is not None and (token.lower() in PLACEHOLDERS or len(token) < MIN_SECRET_LENGTH):
            raise SettingsError(
                f"PARTNERLOOP_METRICS_TOKEN must be a random value of at least {MIN_SECRET_LENGTH} characters "
                "in production, or unset to turn /metrics off"
            )
        if self.database_url.startswith("sqlite"):
            raise SettingsError("production needs PostgreSQL: set PARTNERLOOP_DATABASE_URL")
        if not self.base_url.startswith("https://"):
            raise SettingsError("production needs an https PARTNERLOOP_BASE_URL")
        return self


def _persisted_secrets(path: Path) -> dict[str, str]:
    """Read the development secrets file, creating it (mode 600) on first use."""
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
    else:
        stored = {}
    missing = [name for name in SECRET_NAMES if not stored.get(name)]
    if missing:
        stored.update({name: secrets.token_urlsafe(48) for name in missing})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(stored, handle, indent=2)
    return stored


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; in development, unset secrets come from a persisted file."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.is_production:
        return settings
    unset = [name for name in SECRET_NAMES if not getattr(settings, name).get_secret_value()]
    if unset:
        stored = _persisted_secrets(settings.secrets_file)
        settings = settings.model_copy(update={name: SecretStr(stored[name]) for name in unset})
    return settings
