"""MLflow tracking and the model registry.

Each training run logs its parameters, metrics and data fingerprint, the LightGBM booster in MLflow's
lightgbm flavour (text format, with signature and input example — never the pickled scikit-learn
wrapper), and the verified bundle as run artifacts. The registered version is tagged with the
bundle's SHA-256; the service fetches the bundle of the ``champion`` alias and refuses it unless the
hash matches. ``mlflow`` is imported here, at training time and at service start-up, never on the
request path.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow
import mlflow.lightgbm
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from borderrisk.settings import MODEL_NAMES, Settings
from models.bundle import ModelBundle, load_bundle

CHAMPION = "champion"
CHALLENGER = "challenger"
SHA_TAG = "bundle_sha256"


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
) -> RegisteredVersion:
    """Log a trained bundle as an MLflow run and register it as a new ``challenger`` version.

    The first version of a model also becomes ``champion``; later ones are promoted explicitly.
    """
    domain = bundle.domain
    name = MODEL_NAMES[domain]
    c = client(settings)
    exp = experiment_id(c, settings, domain)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bundle"
        sha = bundle.save(folder)
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.log_params({k: v for k, v in params.items() if v is not None})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
            mlflow.set_tags({"domain": domain, SHA_TAG: sha, **(tags or {})})
            mlflow.log_dict({"features": bundle.metadata["features"]}, "features.json")
            mlflow.log_artifacts(str(folder), artifact_path="bundle")
            for path in extra_artifacts or []:
                mlflow.log_artifact(str(path))
            output = bundle.booster.predict(input_example.to_numpy(), raw_score=True)
            info = mlflow.lightgbm.log_model(
                bundle.booster,
                name=name,
                signature=infer_signature(input_example, output),
                input_example=input_example,
                registered_model_name=name,
            )
    version = str(info.registered_model_version)
    c.set_model_version_tag(name, version, SHA_TAG, sha)
    c.set_model_version_tag(name, version, "run_id", run.info.run_id)
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
    """Copy a registered bundle into the serving cache, verify it against the registry, load it."""
    reg = resolve(settings, domain, ref)
    target = settings.serving_cache / reg.name / reg.version
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=reg.run_id, artifact_path="bundle", dst_path=tmp, tracking_uri=settings.mlflow_uri
        )
        shutil.move(path, target)
    return load_bundle(target, expected_sha256=reg.sha256), reg


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
            "run_id": v.run_id,
        }
        for v in sorted(versions, key=lambda v: int(v.version))
    ]


def metrics_json(bundle: ModelBundle) -> str:
    return json.dumps(bundle.metadata["metrics"], indent=1, sort_keys=True)
