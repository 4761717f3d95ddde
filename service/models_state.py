"""The models the service is serving, loaded at start-up and swappable at run time.

A reload (``POST /v1/models/{domain}/reload``) reaches one worker: the one that received it. With
``borderrisk serve --workers N`` that worker therefore *announces* the version it now serves, in a
small file of the data folder (``serving/<domain>.announced.json``, replaced atomically), and every
worker follows announcements it has not seen yet (:meth:`ServingModels.follow`, polled from the app's
lifespan): the whole service serves the reloaded version within a poll interval, the exact version
announced even if the champion alias has moved since. A worker starting later takes the announcement
already there as seen (it loads the champion as at any start-up), so an old announcement never
turns a new service back to an old model.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

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
    #: The announcement of each domain this worker has acted on (or found at start-up), as read.
    seen: dict[str, str | None] = field(default_factory=dict)
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
        """Start-up: take what is announced already as seen (not news: see the module docstring),
        then load every domain's champion."""
        self._take_announcements_as_seen(settings)
        for domain in DOMAINS:
            try:
                self.load(settings, domain)
            except Exception as exc:
                self.errors[domain] = str(exc)
                log.error("model_load_failed", domain=domain, error=str(exc))

    # ------------------------------------------------------------------ reloads across workers

    @staticmethod
    def _announcement_path(settings: Settings, domain: str) -> Path:
        return settings.serving_cache / f"{domain}.announced.json"

    def _read_announcement(self, settings: Settings, domain: str) -> str | None:
        try:
            return self._announcement_path(settings, domain).read_text()
        except OSError:  # none yet (or unreadable: nothing to follow)
            return None

    def _take_announcements_as_seen(self, settings: Settings) -> None:
        for domain in DOMAINS:
            self.seen[domain] = self._read_announcement(settings, domain)

    def announce(self, settings: Settings, domain: str, scorer: Scorer) -> None:
        """Tell the other workers that ``domain`` is now served by ``scorer``'s version."""
        path = self._announcement_path(settings, domain)
        text = json.dumps(
            {
                "domain": domain,
                "version": scorer.version,
                "sha256": scorer.sha256,
                "announced_at": datetime.now(UTC).isoformat(),
                "pid": os.getpid(),
            }
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(text)
            os.replace(tmp, path)  # atomic: a reader sees the old announcement or the new one
        except OSError as exc:  # this worker serves the new model all the same
            log.error("model_announce_failed", domain=domain, version=scorer.version, error=str(exc))
            return
        self.seen[domain] = text
        log.info("model_announced", domain=domain, version=scorer.version)

    def follow(self, settings: Settings) -> list[str]:
        """Load the version of every announcement not seen yet, unless it is already served;
        return the domains swapped. A version that fails to load leaves the old model serving (the
        failure is logged and counted; the next announcement is tried again)."""
        swapped: list[str] = []
        for domain in DOMAINS:
            text = self._read_announcement(settings, domain)
            if text is None or text == self.seen.get(domain):
                continue
            self.seen[domain] = text
            try:
                version = str(json.loads(text)["version"])
            except (ValueError, KeyError, TypeError):
                log.error("model_announcement_unreadable", domain=domain)
                continue
            serving = self.get(domain)
            if serving is not None and serving.version == version:
                continue
            try:
                self.load(settings, domain, ref=version)
            except Exception as exc:
                metrics.RELOADS.labels(domain, "failed").inc()
                log.error("model_follow_failed", domain=domain, version=version, error=str(exc))
                continue
            metrics.RELOADS.labels(domain, "followed").inc()
            swapped.append(domain)
        return swapped
