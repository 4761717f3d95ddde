"""MLflow tracking and the model registry.

Each training run logs its parameters, metrics and data fingerprint, the LightGBM booster in MLflow's
lightgbm flavour (text format, with signature and input example — never the pickled scikit-learn
wrapper), and the verified bundle as run artifacts. The registered version is tagged with the
bundle's SHA-256; the service fetches the bundle of the ``champion`` alias and refuses it unless the
hash matches. ``mlflow`` is imported here, at training time and at service start-up, never on the
request path.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from borderrisk.settings import MODEL_NAMES, Settings
from models.bundle import BundleError, ModelBundle, load_bundle, verify_bundle

CHAMPION = "champion"
CHALLENGER = "challenger"
SHA_TAG = "bundle_sha256"
#: SHA-256 of the bundle's model.txt: deterministic (same data, configuration and seed, same hash),
#: unlike the bundle's own hash, whose metadata records when it was made.
MODEL_SHA_TAG = "model_sha256"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    sha256: str


class RegistryError(Exception):
    """The registry has no such model, version or alias, or its bundle cannot be verified."""


def client(settings: Settings) -> MlflowClient:
    settings.data_path.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    return MlflowClient(tracking_uri=settings.mlflow_uri, registry_uri=settings.mlflow_uri)


def experiment_id(c: MlflowClient, settings: Settings, domain: str) -> str:
    """The domain's experiment, with its artifacts inside the data folder (not ./mlruns)."""
    name = f"borderrisk-{domain}"
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(c.create_experiment(name, artifact_location=(settings.artifact_root / domain).as_uri()))


def log_and_register(
    settings: Settings,
    bundle: ModelBundle,
    input_example: pd.DataFrame,
    params: dict,
    metrics: dict[str, float],
    tags: dict[str, str] | None = None,
    extra_artifacts: list[Path] | None = None,
    run_name: str | None = None,
    artifact_dir: str | None = None,
) -> RegisteredVersion:
    """Log a trained bundle as an MLflow run and register it as a new ``challenger`` version.

    The first version of a model also becomes ``champion``; later ones are promoted explicitly.
    ``extra_artifacts`` (reports, evaluation rows) go under ``artifact_dir`` of the run; ``tags``
    are set on the run and on the registered version.
    """
    domain = bundle.domain
    name = MODEL_NAMES[domain]
    c = client(settings)
    exp = experiment_id(c, settings, domain)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bundle"
        sha = bundle.save(folder)
        model_sha = hashlib.sha256((folder / "model.txt").read_bytes()).hexdigest()
        all_tags = {"domain": domain, SHA_TAG: sha, MODEL_SHA_TAG: model_sha, **(tags or {})}
        with mlflow.start_run(experiment_id=exp, run_name=run_name) as run:
            mlflow.log_params({k: v for k, v in params.items() if v is not None})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
            mlflow.set_tags(all_tags)
            mlflow.log_dict({"features": bundle.metadata["features"]}, "features.json")
            mlflow.log_artifacts(str(folder), artifact_path="bundle")
            for path in extra_artifacts or []:
                mlflow.log_artifact(str(path), artifact_path=artifact_dir)
            output = bundle.booster.predict(input_example.to_numpy(), raw_score=True)
            info = mlflow.lightgbm.log_model(
                bundle.booster,
                name=name,
                signature=infer_signature(input_example, output),
                input_example=input_example,
                registered_model_name=name,
                # Stated, not inferred: inference re-imports the model in a subprocess (8 s a run)
                # and would list whatever else the training process had imported.
                pip_requirements=[f"lightgbm=={lgb.__version__}", f"numpy=={np.__version__}"],
            )
    version = str(info.registered_model_version)
    for key, value in {**all_tags, "run_id": run.info.run_id}.items():
        c.set_model_version_tag(name, version, key, str(value))
    c.set_registered_model_alias(name, CHALLENGER, version)
    if alias_version(c, name, CHAMPION) is None:
        c.set_registered_model_alias(name, CHAMPION, version)
    return RegisteredVersion(name, version, run.info.run_id, sha)


def alias_version(c: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(c.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def resolve(settings: Settings, domain: str, ref: str = CHAMPION) -> RegisteredVersion:
    """A registered version by alias (``champion``) or number."""
    name = MODEL_NAMES[domain]
    c = client(settings)
    try:
        mv = c.get_model_version(name, ref) if ref.isdigit() else c.get_model_version_by_alias(name, ref)
    except MlflowException as exc:
        raise RegistryError(
            f"{name}: no version for {ref!r} in {settings.mlflow_uri} ({exc.message})"
        ) from None
    sha = mv.tags.get(SHA_TAG)
    if not sha or not mv.run_id:
        raise RegistryError(
            f"{name} v{mv.version}: registered without a bundle SHA-256; refusing to serve it"
        )
    return RegisteredVersion(name, str(mv.version), str(mv.run_id), sha)


def fetch_bundle(
    settings: Settings, domain: str, ref: str = CHAMPION
) -> tuple[ModelBundle, RegisteredVersion]:
    """Download a registered bundle, verify it against the registry, load it, and leave the verified
    copy in the serving cache (``serving/<name>/<version>``) for people to inspect.

    Several processes fetch the same version at once (each uvicorn worker at start-up): each downloads
    into a private folder and loads *that* copy, so no process ever reads a folder another one is
    still writing or replacing. The copy is then published with one atomic rename; a process that
    finds the version already published by another leaves it and removes its own.
    """
    reg = resolve(settings, domain, ref)
    target = settings.serving_cache / reg.name / reg.version
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{reg.version}-") as tmp:
        path = Path(
            mlflow.artifacts.download_artifacts(
                run_id=reg.run_id, artifact_path="bundle", dst_path=tmp, tracking_uri=settings.mlflow_uri
            )
        )
        bundle = load_bundle(path, expected_sha256=reg.sha256)
        _publish(path, target, reg.sha256)
    return bundle, reg


def _publish(verified: Path, target: Path, sha256: str) -> None:
    """Put a verified bundle folder at ``target``: rename it there if nothing is; replace what is
    there unless it is the same bundle (an older download that no longer verifies, say)."""
    try:
        verified.rename(target)
        return
    except OSError:
        pass  # already published (by an earlier run or another worker)
    try:
        verify_bundle(target, expected_sha256=sha256)  # the files' hashes: no need to parse them again
        return
    except (BundleError, OSError):
        pass
    stale = target.with_name(f".stale-{target.name}-{os.getpid()}")
    try:
        target.rename(stale)
        verified.rename(target)
    except OSError:
        return  # another process is replacing it at this moment; ours stays private and goes away
    finally:
        shutil.rmtree(stale, ignore_errors=True)


def version_info(settings: Settings, domain: str, ref: str) -> tuple[RegisteredVersion, dict[str, str]]:
    """A registered version (by alias or number) and its tags."""
    reg = resolve(settings, domain, ref)
    mv = client(settings).get_model_version(reg.name, reg.version)
    return reg, dict(mv.tags or {})


def download_run_artifact(settings: Settings, run_id: str, artifact_path: str, dst: Path) -> Path | None:
    """One artifact of a run, downloaded under ``dst``; None when the run has no such artifact."""
    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=artifact_path,
                dst_path=str(dst),
                tracking_uri=settings.mlflow_uri,
            )
        )
    except (MlflowException, OSError):
        return None


def set_alias(settings: Settings, domain: str, alias: str, version: str, tags: dict[str, str]) -> None:
    """Point ``alias`` at ``version`` and tag the version (who, why, the comparison)."""
    name = MODEL_NAMES[domain]
    c = client(settings)
    for key, value in tags.items():
        c.set_model_version_tag(name, version, key, value)
    c.set_registered_model_alias(name, alias, version)


def tag_version(settings: Settings, domain: str, version: str, tags: dict[str, str]) -> None:
    name = MODEL_NAMES[domain]
    c = client(settings)
    for key, value in tags.items():
        c.set_model_version_tag(name, version, key, value)


def list_versions(settings: Settings, domain: str) -> list[dict]:
    name = MODEL_NAMES[domain]
    c = client(settings)
    try:
        versions = c.search_model_versions(f"name = '{name}'")
        model = c.get_registered_model(name)
    except MlflowException:
        return []
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    return [
        {
            "name": name,
            "version": str(v.version),
            "aliases": sorted(aliases.get(str(v.version), [])),
            "sha256": v.tags.get(SHA_TAG),
            "model_sha256": v.tags.get(MODEL_SHA_TAG),
            "run_id": v.run_id,
        }
        for v in sorted(versions, key=lambda v: int(v.version))
    ]
