"""Structured JSON logs (structlog) for the service and the CLI."""

from __future__ import annotations

import logging
import sys

import structlog

from borderrisk.settings import Settings


def configure_logging(settings: Settings | None = None, level: int = logging.INFO) -> None:
    """JSON lines on stderr, with ISO timestamps and any bound context (a request id, say)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
