"""Prometheus metrics of the service (``GET /metrics``, no key needed).

With several uvicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder before start-up
and every worker's figures are aggregated (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REQUESTS = Counter("borderrisk_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "borderrisk_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
SCORES = Histogram(
    "borderrisk_score",
    "Calibrated scores",
    ["domain"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9),
)
DECISIONS = Counter("borderrisk_decisions_total", "Decisions logged", ["domain", "channel", "selection"])
MODEL_VERSION = Gauge(
    "borderrisk_model_info",
    "Model version in use (1 for the serving one)",
    ["domain", "name", "version", "sha256"],
    multiprocess_mode="liveall",
)
AUDIT_ERRORS = Counter(
    "borderrisk_audit_store_errors_total", "Failures to write or read the decision log", ["op"]
)
DECISION_GROUP = Histogram(
    "borderrisk_decision_group_records",
    "Single-record requests decided and logged together (service.decision_queue)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
RELOADS = Counter("borderrisk_model_reloads_total", "Model reloads", ["domain", "result"])


def render() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def model_served(domain: str, name: str, version: str, sha256: str) -> None:
    """Mark the new model as served and the previous one of the domain as no longer."""
    for labels in list(MODEL_VERSION._metrics):
        if labels[0] == domain:
            MODEL_VERSION.labels(*labels).set(0)
    MODEL_VERSION.labels(domain, name, version, sha256).set(1)
