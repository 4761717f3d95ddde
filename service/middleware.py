"""Request context as plain ASGI middleware: request id, body size limit, metrics, one log line.

Plain ASGI (not ``BaseHTTPMiddleware``) keeps the per-request overhead in microseconds and lets the
body limit stop a request *while it is being received*: a body over the limit gets 413 as soon as the
declared ``Content-Length`` says so, or as soon as the streamed bytes pass the limit — it is never
read whole.
"""

from __future__ import annotations

import time
import uuid

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics

log = structlog.get_logger("borderrisk.http")


class _BodyTooLarge(Exception):
    pass


async def _send_json(send: Send, status: int, body: dict, request_id: str) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"x-request-id", request_id.encode()),
                # The rest of an oversized body is never read: without this, the server would keep
                # the connection alive and read (and discard) whatever the client still sends.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestContext:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        status = 500
        started = False
        limit = self.max_body

        overflow = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if overflow:
                # The app caught the overflow while reading (FastAPI turns it into a 400): answer 413.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    status = 413
                    await _send_json(send, 413, {"detail": f"request body over {limit} bytes"}, request_id)
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received, overflow
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflow = True
                    raise _BodyTooLarge
            return message

        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                status = 413
                await _send_json(send, 413, {"detail": f"request body over {limit} bytes"}, request_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            status = 413
            if not started:
                await _send_json(send, 413, {"detail": f"request body over {limit} bytes"}, request_id)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.REQUESTS.labels(scope["method"], path, str(status)).inc()
            metrics.LATENCY.labels(path).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round(elapsed * 1000, 3),
            )
