"""Settings from environment variables ``BORDERRISK_*`` (pydantic-settings).

All state lives under one data folder (``BORDERRISK_DATA_DIR``, default ``./data``) so that a
deployment is a folder to back up: generated history, MLflow tracking and registry, model bundles
fetched for serving, and the decision log.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Domain = Literal["cargo", "passenger"]
DOMAINS: tuple[Domain, ...] = ("cargo", "passenger")

#: Registered model name per domain in the MLflow registry.
MODEL_NAMES: dict[str, str] = {"cargo": "cargo-risk", "passenger": "passenger-risk"}


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
    host: str = "127.0.0.1"
    port: int = 8000

    # Decision policy: the shares of the flow that go to the red and yellow channels, which follow
    # the inspection capacity. Thresholds are derived from the validation score distribution.
    cargo_red_share: float = Field(default=0.05, gt=0, lt=1)
    cargo_yellow_share: float = Field(default=0.10, ge=0, lt=1)
    passenger_red_share: float = Field(default=0.05, gt=0, lt=1)
    passenger_yellow_share: float = Field(default=0.10, ge=0, lt=1)
    model_alias: str = "champion"

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
