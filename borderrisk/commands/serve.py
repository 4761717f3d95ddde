"""The scoring service."""

from __future__ import annotations

from typing import Annotated

import typer

from borderrisk.commands.common import app
from borderrisk.settings import Settings, get_settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default BORDERRISK_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default BORDERRISK_PORT)")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="worker processes, each with a listening socket of its own")
    ] = 1,
) -> None:
    """Start the scoring service (uvicorn; several workers under a supervisor, see service.server)."""
    from borderrisk.logging import configure_logging
    from service.server import serve as serve_app

    settings: Settings = get_settings()
    configure_logging(settings)
    serve_app(
        "service.main:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_writer=True,  # several workers log through one writer process (service.store.logwriter)
        cpu_pinning=settings.cpu_pinning,  # each worker bound to one CPU (service.affinity)
        log_level="info",
        log_config=None,  # the app routes uvicorn's loggers through its JSON renderer
        access_log=False,  # one JSON line per request comes from the app's middleware instead
    )
