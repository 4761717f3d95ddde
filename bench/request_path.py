"""Request-path benchmark: the real service (auth, features, exact explanation, durable decision log)
against the usual way, both served by uvicorn on 127.0.0.1 and driven by the same load generator."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from bench.loadgen import LoadResult, encode_post, run_load
from service.server import connections_per_worker, listening_sockets

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SECRET = "bench-session-secret-0123456789abcdefghij"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BORDERRISK_")}
    env |= {
        "BORDERRISK_DATA_DIR": str(data_dir),
        "BORDERRISK_ENV": "test",
        "BORDERRISK_SESSION_SECRET": SECRET,
    }
    return env


def prepare(data_dir: Path, rows: int = 100_000) -> None:
    """Demo history and models (as ``make run`` makes them), unless already there."""
    env = bench_env(data_dir)
    cli = [PYTHON, "-m", "borderrisk.cli"]
    for domain, seed in (("cargo", "7"), ("passenger", "11")):
        history = data_dir / "history" / f"{domain}.parquet"
        stamp = data_dir / f".trained-{domain}"
        if not history.exists():
            subprocess.run(
                [*cli, "generate", domain, "--rows", str(rows), "--seed", seed, "--out", str(history)],
                env=env,
                check=True,
                cwd=ROOT,
                capture_output=True,
            )
        if not stamp.exists():
            subprocess.run(
                [*cli, "train", domain, "--data", str(history)],
                env=env,
                check=True,
                cwd=ROOT,
                capture_output=True,
            )
            stamp.touch()


def officer_key(data_dir: Path) -> str:
    from sqlalchemy import create_engine

    from service.store import KeyStore, migrate

    engine = create_engine(f"sqlite:///{data_dir / 'audit.db'}")
    migrate(engine)
    store = KeyStore(engine)
    name = f"bench-{time.time_ns()}"
    key = store.create(name, "officer")
    engine.dispose()
    return key


class Served(NamedTuple):
    port: int
    pid: int  # the server's main process (the supervisor, with several workers)


@contextmanager
def server(app: str, data_dir: Path, workers: int) -> Iterator[Served]:
    """``app`` served as ``borderrisk serve`` serves (``bench/serve.py``), once every worker listens."""
    port = free_port()
    writer = [] if app.startswith("bench.usual_app") else ["--log-writer"]  # as `borderrisk serve`
    proc = subprocess.Popen(
        [PYTHON, "-m", "bench.serve", app, "--port", str(port), "--workers", str(workers), *writer],
        env=bench_env(data_dir),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        path = "/docs" if app.startswith("bench.usual_app") else "/readyz"
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                    if r.status == 200 and listening_sockets(port) >= workers:
                        break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{app} did not become ready")
        yield Served(port, proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def payloads(data_dir: Path, n: int = 200) -> list[dict[str, Any]]:
    import pandas as pd

    from features.schemas import CargoDeclaration

    df = pd.read_parquet(data_dir / "history" / "cargo.parquet").tail(n)
    fields = list(CargoDeclaration.model_fields)
    out = []
    for row in df[fields].to_dict("records"):
        row["declared_at"] = row["declared_at"].isoformat()
        out.append({k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()})
    return out


def _requests(port: int, bodies: list[dict[str, Any]], headers: dict[str, str]) -> list[bytes]:
    return [encode_post("/v1/cargo/score", json.dumps(b).encode(), headers, port) for b in bodies]


def summary(r: LoadResult) -> dict[str, Any]:
    return {
        "requests": r.count,
        "failures": r.failures,
        "statuses": {str(k): v for k, v in sorted(r.statuses.items())},
        "p50_ms": r.p(50),
        "p99_ms": r.p(99),
        "throughput_rps": r.throughput,
    }


def _cpu_ticks() -> tuple[int, int] | None:
    """The machine's (busy, all) CPU time so far, in ticks (Linux ``/proc/stat``); None elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of the machine's CPU time in use between two :func:`_cpu_ticks` readings."""
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def prepare_reference(demo_dir: Path, ref_dir: Path) -> str:
    """A registry in ``ref_dir`` whose cargo champion is a reference-size model (400 trees × 63
    leaves) trained on the demo history; the passenger model is the demo one. Returns its size."""
    import pandas as pd

    env = bench_env(ref_dir)
    cli = [PYTHON, "-m", "borderrisk.cli"]
    stamp = ref_dir / ".trained-reference"
    if not stamp.exists():
        ref_dir.mkdir(parents=True, exist_ok=True)
        cargo = demo_dir / "history" / "cargo.parquet"
        subprocess.run(
            [PYTHON, "-m", "bench.reference_model", "--history", str(cargo)],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        history = demo_dir / "history" / "passenger.parquet"
        subprocess.run(
            [*cli, "train", "passenger", "--data", str(history), "--no-report"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        (ref_dir / "history").mkdir(exist_ok=True)
        pd.read_parquet(demo_dir / "history" / "cargo.parquet").tail(1000).to_parquet(
            ref_dir / "history" / "cargo.parquet"
        )
        stamp.touch()
    from borderrisk.settings import Settings
    from training.registry import fetch_bundle

    bundle, _ = fetch_bundle(Settings(data_dir=ref_dir, env="test", session_secret=SECRET), "cargo")
    return (
        f"{bundle.booster.num_trees()} trees, ≤{bundle.metadata['params']['num_leaves']} leaves, "
        f"{bundle.booster.num_feature()} features"
    )


def fresh_log(data_dir: Path) -> None:
    """Start every run on an empty decision log, so that runs compare (a log that grew over many
    runs makes its index inserts slower) — keys are made afresh by :func:`officer_key`."""
    for suffix in ("", "-wal", "-shm"):
        (data_dir / f"audit.db{suffix}").unlink(missing_ok=True)


def load_and_split(
    served: Served, reqs: list[bytes], *, clients: int, total: int, max_seconds: float
) -> tuple[LoadResult, list[int]]:
    """:func:`run_load` against a multi-worker server, and how many of the clients' connections
    each worker held (sampled a moment into the run; largest first)."""
    held: dict[int, int] = {}
    sampler = threading.Timer(0.5, lambda: held.update(connections_per_worker(served.pid, served.port)))
    sampler.start()
    result = run_load(served.port, reqs, clients=clients, total=total, max_seconds=max_seconds)
    sampler.join()
    return result, sorted(held.values(), reverse=True)


def _measure(
    app: str,
    data_dir: Path,
    bodies: list[dict[str, Any]],
    headers: dict[str, str],
    *,
    workers: int,
    clients: int,
    warm_up: int,
    total: int,
    max_seconds: float,
) -> dict[str, Any]:
    """Serve ``app``, warm it up (JIT, caches), then measure ``total`` requests (bounded in time).
    With several workers, also how many of the clients' connections each worker held."""
    with server(app, data_dir, workers=workers) as served:
        reqs = _requests(served.port, bodies, headers)
        run_load(served.port, reqs, clients=clients, total=warm_up, max_seconds=30)
        if workers == 1:
            return summary(run_load(served.port, reqs, clients=clients, total=total, max_seconds=max_seconds))
        before = _cpu_ticks()
        load, split = load_and_split(served, reqs, clients=clients, total=total, max_seconds=max_seconds)
        result = summary(load)
        result["connections_per_worker"] = split
        result["machine_busy"] = busy_share(before, _cpu_ticks())
        return result


def run(
    data_dir: Path,
    sequential: int = 3000,
    concurrent: int = 6000,
    clients: int = 16,
    usual_sequential: int = 500,
    usual_concurrent: int = 1500,
    ceiling: bool = False,
) -> dict[str, Any]:
    """Ours and the usual way, one worker sequential and two workers with ``clients`` clients; with
    ``ceiling``, also the service with the decision taken out (``bench/ceiling_app.py``)."""
    fresh_log(data_dir)
    bodies = payloads(data_dir)
    ours, usual = "service.main:app", "bench.usual_app:app"
    headers = {"Authorization": f"Bearer {officer_key(data_dir)}"}
    one = {"workers": 1, "clients": 1}
    two = {"workers": 2, "clients": clients}
    results: dict[str, Any] = {
        "ours_1w_sequential": _measure(
            ours, data_dir, bodies, headers, **one, warm_up=300, total=sequential, max_seconds=90
        ),
        "usual_1w_sequential": _measure(
            usual, data_dir, bodies, {}, **one, warm_up=50, total=usual_sequential, max_seconds=60
        ),
        "ours_2w_16c": _measure(
            ours, data_dir, bodies, headers, **two, warm_up=600, total=concurrent, max_seconds=90
        ),
        "usual_2w_16c": _measure(
            usual, data_dir, bodies, {}, **two, warm_up=100, total=usual_concurrent, max_seconds=60
        ),
    }
    if ceiling:
        results["ceiling_2w_16c"] = _measure(
            "bench.ceiling_app:app",
            data_dir,
            bodies,
            headers,
            **two,
            warm_up=600,
            total=concurrent,
            max_seconds=60,
        )
    results["throughput_ratio_2w_16c"] = (
        results["ours_2w_16c"]["throughput_rps"] / results["usual_2w_16c"]["throughput_rps"]
    )
    results["throughput_ratio_1w_sequential"] = (
        results["ours_1w_sequential"]["throughput_rps"] / results["usual_1w_sequential"]["throughput_rps"]
    )
    return results
