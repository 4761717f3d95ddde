"""A small HTTP/1.1 keep-alive load generator for loopback benchmarks.

Pre-encoded requests over raw asyncio streams (on uvloop when it is installed, as it is with
uvicorn[standard]) keep the client's own cost per request in the tens of microseconds, so on a
2-core machine it disturbs the server as little as possible. Every loop is bounded in count and in
time, and it only ever connects to 127.0.0.1.

Only answers with status 200 count as throughput; every other status is counted by status and
reported as a failure, so a server that answers fast with errors cannot look fast.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def throughput(self) -> float:
        """Successful (200) answers per second of wall time."""
        return self.ok / self.wall_s if self.wall_s else float("nan")

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)


def encode_post(path: str, body: bytes, headers: dict[str, str], port: int) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _client(
    port: int, requests: list[bytes], result: LoadResult, deadline: float, budget: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        i = 0
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            payload = requests[i % len(requests)]
            i += 1
            start = time.perf_counter()
            try:
                writer.write(payload)
                status = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                # the server closed the connection (after an error, or a worker gone): counted as a
                # failure with status 0, and the client goes on with a new connection
                result.statuses[0] = result.statuses.get(0, 0) + 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            result.latencies_ms.append((time.perf_counter() - start) * 1000)
            result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()


def run_load(port: int, requests: list[bytes], *, clients: int, total: int, max_seconds: float) -> LoadResult:
    """Send up to ``total`` requests from ``clients`` keep-alive connections, for at most ``max_seconds``."""

    async def main() -> LoadResult:
        result = LoadResult()
        budget = [total]
        start = time.perf_counter()
        deadline = start + max_seconds
        await asyncio.gather(*(_client(port, requests, result, deadline, budget) for _ in range(clients)))
        result.wall_s = time.perf_counter() - start
        return result

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(main())
    return uvloop.run(main())
