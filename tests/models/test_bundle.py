"""A bundle loads only if every file is exactly what was saved; nothing is ever unpickled."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.bundle import MODEL_FILE, STATE_FILE, BundleError, load_bundle, verify_bundle


@pytest.fixture
def saved(tmp_path: Path, cargo_trained) -> tuple[Path, str]:
    folder = tmp_path / "bundle"
    sha = cargo_trained.result.bundle.save(folder)
    return folder, sha


def test_round_trip_gives_identical_predictions(saved, cargo_trained):
    folder, sha = saved
    loaded = load_bundle(folder, expected_sha256=sha)
    assert loaded.sha256 == sha
    original = cargo_trained.result.bundle
    later = cargo_trained.later.head(500)
    cols = {c: later[c] for c in later.columns}
    X = original.builder().transform(cols)
    np.testing.assert_array_equal(X, loaded.builder().transform(cols))
    np.testing.assert_array_equal(
        original.booster.predict(X, raw_score=True), loaded.booster.predict(X, raw_score=True)
    )
    assert loaded.calibrator == original.calibrator


def test_same_bundle_same_hash(tmp_path, cargo_trained):
    a = cargo_trained.result.bundle.save(tmp_path / "a")
    b = cargo_trained.result.bundle.save(tmp_path / "b")
    assert a == b


def test_altered_model_file_is_refused_with_its_name(saved):
    folder, sha = saved
    assert verify_bundle(folder, expected_sha256=sha) == sha  # intact: checked without parsing
    text = (folder / MODEL_FILE).read_text()
    (folder / MODEL_FILE).write_text(text.replace("leaf_value=", "leaf_value=1", 1))
    for check in (load_bundle, verify_bundle):
        with pytest.raises(BundleError, match=r"model\.txt: SHA-256 mismatch"):
            check(folder, expected_sha256=sha)


def test_manifest_not_matching_the_registry_is_refused(saved):
    folder, _ = saved
    with pytest.raises(BundleError, match="does not match the registered"):
        load_bundle(folder, expected_sha256="0" * 64)


def test_rewritten_manifest_cannot_hide_a_swapped_file(saved):
    """An attacker who rewrites both a file and the manifest still fails the registry's hash."""
    folder, sha = saved
    state = json.loads((folder / STATE_FILE).read_text())
    state["prior_rate"] = 0.9
    (folder / STATE_FILE).write_text(json.dumps(state))
    manifest = json.loads((folder / "manifest.json").read_text())
    import hashlib

    manifest["files"][STATE_FILE] = hashlib.sha256((folder / STATE_FILE).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="does not match the registered"):
        load_bundle(folder, expected_sha256=sha)


def test_truncated_model_text_is_refused(saved, tmp_path):
    folder, _ = saved
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    text = (copy / MODEL_FILE).read_text()
    (copy / MODEL_FILE).write_text(text[: len(text) // 3])
    manifest = json.loads((copy / "manifest.json").read_text())
    import hashlib

    manifest["files"][MODEL_FILE] = hashlib.sha256((copy / MODEL_FILE).read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="not a valid LightGBM text model"):
        load_bundle(copy)


def test_planted_pickle_is_refused_and_never_executed(saved, tmp_path):
    folder, sha = saved
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (folder / "model.pkl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(BundleError, match=r"unexpected file\(s\) model\.pkl"):
        load_bundle(folder, expected_sha256=sha)
    assert not marker.exists()


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path / "nothing")
