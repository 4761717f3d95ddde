"""Settings from environment variables ``BORDERRISK_*`` (pydantic-settings).

All state lives under one data folder (``BORDERRISK_DATA_DIR``, default ``./data``) so that a
deployment is a folder to back up: generated history, MLflow tracking and registry, model bundles
fetched for serving, and the decision log.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Domain = Literal["cargo", "passenger"]
DOMAINS: tuple[Domain, ...] = ("cargo", "passenger")

#: Registered model name per domain in the MLflow registry.
MODEL_NAMES: dict[str, str] = {"cargo": "cargo-risk", "passenger": "passenger-risk"}


DEV_SECRET = "dev-only-insecure-session-secret"

#: Binding each worker of `borderrisk serve` to one CPU (see service.affinity).
CpuPinning = Literal["auto", "on", "off"]


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to ``BORDERRISK_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="BORDERRISK_", extra="ignore", frozen=True)

    env: Literal["dev", "test", "prod"] = "dev"
    data_dir: Path = Path("data")
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking/registry URI; default sqlite:///<data_dir>/mlflow.db"
    )
    database_url: str | None = Field(
        default=None, description="Decision log; default SQLite file <data_dir>/audit.db"
    )
    log_writer: str | None = Field(
        default=None,
        description=(
            "Unix socket of the decision-log writer process; set by `borderrisk serve --workers N` "
            "for its workers (see service.store.logwriter), not by hand"
        ),
    )
    host: str = "127.0.0.1"
    port: int = 8000
    cpu_pinning: CpuPinning = Field(
        default="auto",
        description=(
            "bind each worker process of `borderrisk serve` to one CPU (round robin); auto: when the "
            "workers cover every allowed CPU and no cgroup CPU quota applies (see service.affinity)"
        ),
    )

    # Decision policy: the shares of the flow that go to the red and yellow channels, which follow
    # the inspection capacity. Thresholds are derived from the validation score distribution.
    cargo_red_share: float = Field(default=0.05, gt=0, lt=1)
    cargo_yellow_share: float = Field(default=0.10, ge=0, lt=1)
    passenger_red_share: float = Field(default=0.05, gt=0, lt=1)
    passenger_yellow_share: float = Field(default=0.10, ge=0, lt=1)
    model_alias: str = "champion"
    #: Share of declarations sent to inspection at random, whatever their score: it keeps the labels
    #: of the next training history unbiased and shows what the model is worth.
    random_share: float = Field(default=0.02, ge=0, le=1)

    # Operations
    batch_max: int = Field(default=1000, ge=1, description="most records in one batch request")
    max_body_bytes: int = Field(default=2_000_000, ge=1024, description="larger request bodies get 413")
    key_cache_ttl: float = Field(default=5.0, ge=0, description="seconds an API-key lookup is cached")
    session_secret: SecretStr = Field(
        default=SecretStr(DEV_SECRET), description="signs oversight session cookies; must be set outside dev"
    )

    # Oversight and retention
    retention_mask_days: int = Field(
        default=183,
        ge=1,
        description="personal fields of passenger decisions are masked after this (6 months)",
    )
    retention_delete_days: int = Field(
        default=1827, ge=1, description="decision records are deleted after this (5 years)"
    )
    oversight_ratio_bound: float = Field(
        default=1.25, gt=1, description="flag a group whose rate is above bound × or below 1/bound × overall"
    )
    oversight_min_group: int = Field(default=30, ge=1, description="decisions a group needs to be flagged")
    oversight_session_hours: float = Field(default=8, gt=0, le=24, description="oversight login lifetime")

    @model_validator(mode="after")
    def _retention_order(self) -> Settings:
        if self.retention_delete_days <= self.retention_mask_days:
            raise ValueError("BORDERRISK_RETENTION_DELETE_DAYS must be longer than the masking period")
        return self

    @model_validator(mode="after")
    def _no_default_secret_outside_dev(self) -> Settings:
        if self.env != "dev" and self.session_secret.get_secret_value() == DEV_SECRET:
            raise ValueError(
                f"BORDERRISK_SESSION_SECRET must be set when BORDERRISK_ENV={self.env} "
                "(the default is for dev only)"
            )
        if self.env != "dev" and len(self.session_secret.get_secret_value()) < 32:
            raise ValueError("BORDERRISK_SESSION_SECRET must be at least 32 characters")
        return self

    @model_validator(mode="after")
    def _shares_fit(self) -> Settings:
        for domain in DOMAINS:
            red, yellow = self.channel_shares(domain)
            if red + yellow >= 1:
                raise ValueError(f"{domain}: red share + yellow share must be below 1 (got {red + yellow})")
        return self

    def channel_shares(self, domain: str) -> tuple[float, float]:
        return getattr(self, f"{domain}_red_share"), getattr(self, f"{domain}_yellow_share")

    @cached_property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def mlflow_uri(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.data_path / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.data_path / "mlartifacts"

    @property
    def serving_cache(self) -> Path:
        """Where registered bundles are copied before they are verified and loaded."""
        return self.data_path / "serving"

    @property
    def audit_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_path / 'audit.db'}"


def get_settings() -> Settings:
    return Settings()
