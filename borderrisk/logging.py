"""Structured JSON logs (structlog) for the service and the CLI.

The standard library's loggers (uvicorn's, alembic's, mlflow's) are routed through the same JSON
renderer, so every line a deployment collects is one JSON object, with the request id bound in the
request's context wherever there is one.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

from borderrisk.settings import Settings

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _dumps(event: Any, **_: Any) -> str:
    """One log line: orjson (the service writes a line per request; ``json.dumps`` costs several times
    as much), anything it cannot write natively shown with ``repr``."""
    return orjson.dumps(event, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(settings: Settings | None = None, level: int = logging.INFO) -> None:
    """JSON lines on stderr, with ISO timestamps and any bound context (a request id, say)."""
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(serializer=_dumps),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # the middleware logs each request
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
