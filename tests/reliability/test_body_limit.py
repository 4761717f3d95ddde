"""A body over the size limit, streamed to a real server: 413, and the upload is cut off.

The client's body generator would yield 100 times the limit (chunked, no ``Content-Length``); the
test counts the chunks the client managed to hand to the socket before the server answered 413 and
closed the connection. (In-process, ``tests/service/test_malformed_payloads.py`` counts the chunks the
application itself pulls; this test covers what uvicorn does with the rest of the stream.)
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.reliability.conftest import bearer, make_store_keys
from tests.reliability.figures import write_figures

pytestmark = pytest.mark.reliability

CHUNK = 64 * 1024


def test_streamed_oversized_body_is_cut_off(registry, servers, tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    keys = make_store_keys(url)
    registry.set_champion("cargo", "1")
    server = servers(registry.data_dir, url, BORDERRISK_MAX_BODY_BYTES="1000000")
    limit = 1_000_000
    total = 100 * limit // CHUNK
    pulled = 0

    def body():
        nonlocal pulled
        for _ in range(total):
            pulled += 1
            yield b" " * CHUNK

    started = time.monotonic()
    try:
        r = httpx.post(
            server.url + "/v1/cargo/score/batch",
            content=body(),
            headers={**bearer(keys["officer"]), "content-type": "application/json"},
            timeout=30,
        )
        outcome: int | str = r.status_code
        assert r.status_code == 413 and "1000000 bytes" in r.json()["detail"], r.text
        assert r.headers.get("connection") == "close"
    except httpx.HTTPError as exc:  # the server closed the connection before the client read the 413
        outcome = type(exc).__name__
    elapsed = time.monotonic() - started
    # What the client handed over is the limit plus what the sockets' buffers took before the close.
    assert pulled < total / 4, f"{pulled} of {total} chunks were taken"
    assert httpx.get(server.url + "/readyz").status_code == 200
    write_figures(
        "body_limit",
        {
            "command": "pytest tests/reliability/test_body_limit.py",
            "limit_bytes": limit,
            "offered_chunks": total,
            "chunk_bytes": CHUNK,
            "chunks_taken": pulled,
            "answer": outcome,
            "seconds": round(elapsed, 2),
        },
    )
