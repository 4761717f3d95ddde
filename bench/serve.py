"""``python -m bench.serve APP --port P --workers N``: serve a benchmarked app (ours or the usual way's
peer) exactly as ``borderrisk serve`` serves the service, so both sides get the same workers and the
same spreading of connections over them (``service/server.py``)."""

from __future__ import annotations

import argparse

from service.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app", help="ASGI app import string, e.g. bench.usual_app:app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--log-writer", action="store_true", help="with several workers, log through a writer process"
    )
    args = parser.parse_args()
    from borderrisk.settings import get_settings

    serve(
        args.app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_writer=args.log_writer,
        cpu_pinning=get_settings().cpu_pinning,  # as `borderrisk serve` binds its workers
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
