"""The model bundle: what a trained model is, on disk and in memory.

A bundle is a folder of plain files — LightGBM's text model, the fitted feature state, the
calibration and the metadata, all JSON — plus ``manifest.json`` with the SHA-256 of each. The bundle's
identity is the SHA-256 of its manifest. Loading reads each file once, checks its hash and only then
parses those same bytes, so what is verified is what is loaded. Nothing is ever unpickled, and a
bundle with a file that the manifest does not list (a planted ``model.pkl``, say) is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb

from features.builder import FeatureBuilder, FeatureState
from features.domains import builder_class
from models.calibration import Calibrator

FORMAT = 1
MODEL_FILE = "model.txt"
STATE_FILE = "feature_state.json"
CALIBRATION_FILE = "calibration.json"
METADATA_FILE = "metadata.json"
MANIFEST_FILE = "manifest.json"
PAYLOAD_FILES = (MODEL_FILE, STATE_FILE, CALIBRATION_FILE, METADATA_FILE)


class BundleError(Exception):
    """A bundle that must not be served: missing, altered, truncated or of an unknown format."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False).encode()


@dataclass
class ModelBundle:
    booster: lgb.Booster
    state: FeatureState
    calibrator: Calibrator
    metadata: dict[str, Any]
    sha256: str | None = None  # of the manifest, once saved or loaded

    @property
    def domain(self) -> str:
        return str(self.metadata["domain"])

    def builder(self) -> FeatureBuilder:
        return builder_class(self.domain)(self.state)

    def save(self, folder: Path) -> str:
        """Write the bundle; returns its SHA-256 (the manifest's)."""
        folder.mkdir(parents=True, exist_ok=True)
        payload = {
            MODEL_FILE: self.booster.model_to_string(num_iteration=-1).encode(),
            STATE_FILE: self.state.to_json().encode(),
            CALIBRATION_FILE: _dumps(self.calibrator.to_dict()),
            METADATA_FILE: _dumps(self.metadata),
        }
        for name, data in payload.items():
            (folder / name).write_bytes(data)
        manifest = _dumps({"format": FORMAT, "files": {n: sha256_hex(d) for n, d in payload.items()}})
        (folder / MANIFEST_FILE).write_bytes(manifest)
        self.sha256 = sha256_hex(manifest)
        return self.sha256


def check_model_text(text: str) -> None:
    """Structural check before LightGBM parses the text.

    LightGBM's parser aborts the whole process on some malformed inputs (a model cut off inside a
    tree, for one) instead of raising, so the text is checked first: the header must announce the
    trees (``tree_sizes``), each announced tree must be there with its declared size, and the trees
    must be closed by ``end of trees``.
    """
    if not text.startswith("tree\n"):
        raise ValueError("does not start with a LightGBM model header")
    header, sep, rest = text.partition("\n\n")
    sizes_line = next((ln for ln in header.splitlines() if ln.startswith("tree_sizes=")), None)
    if not sep or sizes_line is None:
        raise ValueError("header without tree_sizes")
    try:
        sizes = [int(v) for v in sizes_line.removeprefix("tree_sizes=").split()]
    except ValueError:
        raise ValueError("malformed tree_sizes") from None
    body = rest.encode()
    offset = 0
    for i, size in enumerate(sizes):
        block = body[offset : offset + size]
        if len(block) != size or not block.startswith(f"Tree={i}\n".encode()):
            raise ValueError(f"tree {i} of {len(sizes)} is missing or truncated")
        offset += size
    if not body[offset:].lstrip(b"\n").startswith(b"end of trees"):
        raise ValueError("no 'end of trees' after the last tree")


def verify_bundle(folder: Path, expected_sha256: str | None = None) -> str:
    """Check a bundle's files against its manifest (and the manifest against ``expected_sha256``)
    without parsing them; returns the bundle's SHA-256. Raises :class:`BundleError` like
    :func:`load_bundle`."""
    return _verified_files(Path(folder), expected_sha256)[1]


def _verified_files(folder: Path, expected_sha256: str | None) -> tuple[dict[str, bytes], str]:
    """The payload files' bytes, each checked against the manifest, and the manifest's SHA-256."""
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise BundleError(f"{folder}: no {MANIFEST_FILE}; not a model bundle")
    manifest_bytes = manifest_path.read_bytes()
    bundle_sha = sha256_hex(manifest_bytes)
    if expected_sha256 is not None and bundle_sha != expected_sha256:
        raise BundleError(
            f"{folder}: manifest SHA-256 {bundle_sha} does not match the registered {expected_sha256}"
        )
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise BundleError(f"{folder}: {MANIFEST_FILE} is not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT or set(manifest.get("files", {})) != set(PAYLOAD_FILES):
        raise BundleError(f"{folder}: unsupported bundle format or file list in {MANIFEST_FILE}")
    extra = sorted(p.name for p in folder.iterdir() if p.name not in (*PAYLOAD_FILES, MANIFEST_FILE))
    if extra:
        raise BundleError(f"{folder}: unexpected file(s) {', '.join(extra)}; refusing to load the bundle")

    data: dict[str, bytes] = {}
    for name, want in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{folder}: {name} is missing")
        blob = path.read_bytes()
        got = sha256_hex(blob)
        if got != want:
            raise BundleError(
                f"{folder}/{name}: SHA-256 mismatch (manifest {want}, file {got}); load refused"
            )
        data[name] = blob
    return data, bundle_sha


def load_bundle(folder: Path, expected_sha256: str | None = None) -> ModelBundle:
    """Verify and load a bundle. ``expected_sha256`` (from the registry) pins the manifest itself."""
    folder = Path(folder)
    data, bundle_sha = _verified_files(folder, expected_sha256)
    try:
        text = data[MODEL_FILE].decode()
        check_model_text(text)
        booster = lgb.Booster(model_str=text)
    except (lgb.basic.LightGBMError, UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{folder}/{MODEL_FILE}: not a valid LightGBM text model ({exc})") from None
    try:
        state = FeatureState.from_json(data[STATE_FILE])
        calibrator = Calibrator.from_dict(json.loads(data[CALIBRATION_FILE]))
        metadata = json.loads(data[METADATA_FILE])
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{folder}: invalid bundle JSON ({exc})") from None
    if booster.num_feature() != len(metadata.get("features", [])):
        raise BundleError(
            f"{folder}: model has {booster.num_feature()} features, metadata lists "
            f"{len(metadata.get('features', []))}"
        )
    return ModelBundle(
        booster=booster, state=state, calibrator=calibrator, metadata=metadata, sha256=bundle_sha
    )
