"""Runs are registered in MLflow, and the service only loads a bundle the registry vouches for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.bundle import BundleError
from training.registry import CHAMPION, RegistryError, fetch_bundle, list_versions, resolve


def test_first_version_is_champion_and_challenger(registered):
    for domain in ("cargo", "passenger"):
        versions = list_versions(registered, domain)
        assert [v["version"] for v in versions] == ["1"]
        assert versions[0]["aliases"] == ["challenger", "champion"]
        assert len(versions[0]["sha256"]) == 64


def test_fetch_verifies_against_the_registered_hash(registered, cargo_trained):
    bundle, reg = fetch_bundle(registered, "cargo", CHAMPION)
    assert bundle.sha256 == reg.sha256
    assert bundle.booster.model_to_string() == cargo_trained.result.bundle.booster.model_to_string()


def test_a_tampered_artifact_in_the_registry_is_refused(registered, tmp_path):
    reg = resolve(registered, "cargo")
    artifacts = next(Path(registered.artifact_root).rglob(f"{reg.run_id}/artifacts/bundle"))
    backup = tmp_path / "backup"
    shutil.copytree(artifacts, backup)
    try:
        model = artifacts / "model.txt"
        model.write_text(model.read_text().replace("shrinkage=", "shrinkage=9", 1))
        with pytest.raises(BundleError, match="SHA-256 mismatch"):
            fetch_bundle(registered, "cargo")
    finally:
        shutil.rmtree(artifacts)
        shutil.copytree(backup, artifacts)
    fetch_bundle(registered, "cargo")  # restored: loads again


def test_unknown_alias_is_a_clear_error(registered):
    with pytest.raises(RegistryError, match="no version for 'nonexistent'"):
        resolve(registered, "cargo", "nonexistent")


def test_concurrent_fetches_of_one_version_all_load_it(registered):
    """Each uvicorn worker fetches the champion at start-up, at the same moment, into the same
    serving cache: every fetch must load the verified bundle, and the cache must hold it whole."""
    import threading

    from models.bundle import load_bundle

    reg = resolve(registered, "cargo")
    shutil.rmtree(registered.serving_cache, ignore_errors=True)
    for _attempt in range(3):  # into an empty cache, then over the copy already there (a restart)
        barrier = threading.Barrier(4)
        results: list[object] = []

        def fetch(barrier: threading.Barrier = barrier, results: list[object] = results) -> None:
            barrier.wait(timeout=30)
            try:
                results.append(fetch_bundle(registered, "cargo")[0].sha256)
            except Exception as exc:
                results.append(exc)

        threads = [threading.Thread(target=fetch) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert results == [reg.sha256] * 4, results
        published = registered.serving_cache / reg.name / reg.version
        assert load_bundle(published, expected_sha256=reg.sha256).sha256 == reg.sha256
        assert sorted(p.name for p in published.parent.iterdir()) == [reg.version]  # no leftovers
