"""The models the service is serving, loaded at start-up and swappable at run time."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import structlog

from borderrisk.settings import DOMAINS, Settings
from models.scoring import Scorer
from service import metrics

log = structlog.get_logger(__name__)


@dataclass
class ServingModels:
    """One :class:`Scorer` per domain. Replacing an entry is a single reference swap, so a request
    that already holds the old scorer finishes with it and the next one gets the new model."""

    scorers: dict[str, Scorer] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, domain: str) -> Scorer | None:
        return self.scorers.get(domain)

    @property
    def ready(self) -> bool:
        return all(d in self.scorers for d in DOMAINS)

    def load(self, settings: Settings, domain: str, ref: str | None = None) -> Scorer:
        """Fetch, verify and load a registered model, then swap it in. On failure the old one stays."""
        from training.registry import fetch_bundle  # mlflow: start-up and reload only, never per request

        with self._lock:
            bundle, reg = fetch_bundle(settings, domain, ref or settings.model_alias)
            red, yellow = settings.channel_shares(domain)
            scorer = Scorer(bundle, red_share=red, yellow_share=yellow, version=reg.version)
            self.scorers[domain] = scorer
            metrics.model_served(domain, reg.name, reg.version, reg.sha256)
            self.errors.pop(domain, None)
            log.info("model_loaded", domain=domain, name=reg.name, version=reg.version, sha256=reg.sha256)
            return scorer

    def load_all(self, settings: Settings) -> None:
        for domain in DOMAINS:
            try:
                self.load(settings, domain)
            except Exception as exc:
                self.errors[domain] = str(exc)
                log.error("model_load_failed", domain=domain, error=str(exc))
