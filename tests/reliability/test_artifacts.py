"""Tampered model artifacts are refused on reload (409, with the reason) while the old model keeps
serving — and a pickle planted in the registry's artifact folder is never executed.

Each bad candidate is a freshly registered version of the cargo model made ``champion``, then spoilt in
the registry's artifact store (where ``fetch_bundle`` downloads from):

* the registered hash is wrong (the version's ``bundle_sha256`` tag);
* ``model.txt`` is cut in the middle, the manifest left as it was (caught by the file's SHA-256);
* ``model.txt`` is cut in the middle *and* the manifest and the registered hash are rewritten to match —
  what someone with write access to the registry could do — so only the structural check of the
  LightGBM text stands between the file and LightGBM's parser, which aborts the whole process on some
  truncated models: the server must answer 409 and live on;
* a ``model.pkl`` whose unpickling would create a marker file sits beside the bundle's files.

Scoring runs all along: every request succeeds, with the old version.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
import pytest

from tests.reliability.conftest import Load, bearer, make_store_keys, register
from tests.reliability.figures import write_figures

pytestmark = pytest.mark.reliability


class Planted:
    """Unpickling this opens (creates) ``marker`` for writing: a stand-in for any code a pickle runs."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def bundle_dir(registry, version: str) -> Path:
    c = registry.client()
    run = c.get_run(c.get_model_version("cargo-risk", version).run_id)
    return Path(unquote(urlparse(run.info.artifact_uri).path)) / "bundle"


def cut_model_text(folder: Path) -> None:
    text = (folder / "model.txt").read_text()
    start = text.index("Tree=1\n")
    (folder / "model.txt").write_text(text[: start + (text.index("Tree=2\n") - start) // 2])


def rewrite_manifest(folder: Path) -> str:
    """Re-hash the files into the manifest; returns the manifest's new SHA-256."""
    manifest = json.loads((folder / "manifest.json").read_bytes())
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    data = json.dumps(manifest, sort_keys=True, indent=1).encode()
    (folder / "manifest.json").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_tampered_artifacts_are_refused_and_the_old_model_serves(
    registry, servers, tmp_path, cargo_payloads, cargo_trained
):
    marker = tmp_path / "pickle-was-executed"
    control = tmp_path / "control-marker"
    payload = pickle.dumps(Planted(str(marker)))
    # Control: the planted bytes really do run code when unpickled (in another process).
    subprocess.run(
        [sys.executable, "-c", "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"],
        input=pickle.dumps(Planted(str(control))),
        check=True,
        timeout=30,
    )
    assert control.exists()

    url = f"sqlite:///{tmp_path / 'audit.db'}"
    keys = make_store_keys(url)
    registry.set_champion("cargo", "1")
    server = servers(registry.data_dir, url)
    admin = httpx.Client(base_url=server.url, headers=bearer(keys["admin"]), timeout=60)
    c = registry.client()

    def wrong_hash(version: str) -> None:
        c.set_model_version_tag("cargo-risk", version, "bundle_sha256", "0" * 64)

    def truncated(version: str) -> None:
        cut_model_text(bundle_dir(registry, version))

    def truncated_consistent(version: str) -> None:
        folder = bundle_dir(registry, version)
        cut_model_text(folder)
        c.set_model_version_tag("cargo-risk", version, "bundle_sha256", rewrite_manifest(folder))

    def planted_pickle(version: str) -> None:
        (bundle_dir(registry, version) / "model.pkl").write_bytes(payload)

    cases = [
        (wrong_hash, "does not match the registered"),
        (truncated, "SHA-256 mismatch"),
        (truncated_consistent, "not a valid LightGBM text model"),
        (planted_pickle, "unexpected file(s) model.pkl"),
    ]
    load = Load(
        server.url,
        "/v1/cargo/score",
        cargo_payloads,
        bearer(keys["officer"]),
        workers=2,
        per_worker=400,
        deadline=120,
        pause=0.02,
    )
    refused = []
    load.start()
    try:
        for spoil, reason in cases:
            version = register(registry.settings, cargo_trained)
            spoil(version)
            registry.set_champion("cargo", version)
            for _ in range(2):  # a retry meets the same refusal
                r = admin.post("/v1/models/cargo/reload")
                assert r.status_code == 409, r.text
                detail = r.json()["detail"]
                assert reason in detail and "still serving version 1" in detail, detail
            assert server.proc.poll() is None, f"the server died on {spoil.__name__}:\n{server.tail()}"
            refused.append({"case": spoil.__name__, "version": version, "detail": detail[-160:]})
        versions_while_refusing = {a.body["model"]["version"] for a in load.ok()}
        # A good version still loads afterwards.
        registry.set_champion("cargo", "2")
        r = admin.post("/v1/models/cargo/reload")
        assert r.status_code == 200 and r.json()["version"] == "2", r.text
    finally:
        load.stop.set()
        load.join()
        registry.set_champion("cargo", "1")
        admin.close()

    failed = [a for a in load.answers if a.status != 200]
    assert not failed, failed[:3]
    assert versions_while_refusing == {"1"}
    assert not marker.exists(), "the planted pickle was executed"
    write_figures(
        "artifacts",
        {
            "command": "pytest tests/reliability/test_artifacts.py",
            "refused": refused,
            "score_requests_during_reloads": len(load.answers),
            "failed": len(failed),
            "pickle_executed": marker.exists(),
        },
    )
