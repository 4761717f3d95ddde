"""A training run end to end, as ``borderrisk train`` runs it.

file (+ mapping) → every row converted and validated, or excluded on purpose with a reason → refuse
the file if any row fails (an MLflow run marked FAILED, with the failures as CSV and an HTML report in
``<data>/runs/<run_id>/``) → optional tuning → training → HTML report → MLflow: parameters, metrics,
the SHA-256 of the data file and of the mapping, the feature list, the Booster with signature and
input example, the bundle, the report and the validation rows → a new registered ``challenger``.

The run folder ``<data>/runs/<run_id>/`` keeps a copy of what a person reads: ``report.html``,
``validation_errors.csv`` or ``excluded_rows.csv``, ``monthly_metrics.csv``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from borderrisk.settings import Settings
from features.domains import builder_class
from training.dataload import LoadedFile, load_file
from training.pipeline import TrainConfig, TrainResult, train
from training.registry import RegisteredVersion, client, experiment_id, log_and_register

#: Artifact folder (in the MLflow run) of the reports, tables and the evaluation rows.
EVAL_DIR = "evaluation"
#: The challenger's validation rows with their honest margins (frozen features), for promotion.
VALIDATION_ROWS = "validation_rows.parquet"

Progress = Callable[[str], None]


class TrainingRefused(Exception):
    """The file failed validation: nothing was trained. ``run_dir`` holds the failures."""

    def __init__(self, loaded: LoadedFile, run_id: str, run_dir: Path) -> None:
        self.loaded, self.run_id, self.run_dir = loaded, run_id, run_dir
        super().__init__(
            f"{loaded.path}: {loaded.failed_rows:,} row(s) failed validation "
            f"({len(loaded.failures):,} problem(s)); nothing was trained"
        )


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    registered: RegisteredVersion
    result: TrainResult
    loaded: LoadedFile
    config: TrainConfig


def runs_dir(settings: Settings) -> Path:
    return settings.data_path / "runs"


def write_tables(folder: Path, loaded: LoadedFile) -> list[Path]:
    """The failures and exclusions of a loaded file as CSV (only those that are not empty)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    if not loaded.failures.empty:
        path = folder / "validation_errors.csv"
        loaded.failures.to_csv(path, index=False)
        out.append(path)
    if not loaded.excluded.empty:
        path = folder / "excluded_rows.csv"
        loaded.excluded.to_csv(path, index=False)
        out.append(path)
    return out


def _facts(loaded: LoadedFile) -> dict[str, Any]:
    return {
        "data file": str(loaded.path),
        "data SHA-256": loaded.data_sha256,
        "mapping": loaded.mapping.description.strip()
        or ("identity" if loaded.mapping_sha256 is None else ""),
        "mapping SHA-256": loaded.mapping_sha256 or "— (file uses the schema's columns)",
    }


def refuse(settings: Settings, domain: str, loaded: LoadedFile, mapping_path: Path | None) -> TrainingRefused:
    """Record a refused file as a FAILED MLflow run with its failures; the exception to raise."""
    import mlflow

    from training.report import Report, data_sections

    c = client(settings)
    exp = experiment_id(c, settings, domain)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = write_tables(folder, loaded)
        report = Report(
            title=f"{domain} training refused: {loaded.path.name} failed validation", facts=_facts(loaded)
        )
        data_sections(report, loaded, None, builder_class(domain).time_field)
        (folder / "report.html").write_text(report.render(), encoding="utf-8")
        files.append(folder / "report.html")
        run = mlflow.start_run(experiment_id=exp, run_name=f"refused {loaded.path.name}")
        try:
            mlflow.set_tags(
                {
                    "domain": domain,
                    "outcome": "refused: validation failed",
                    "data_file": str(loaded.path),
                    "data_sha256": loaded.data_sha256,
                    "mapping_sha256": loaded.mapping_sha256 or "",
                }
            )
            mlflow.log_metrics({k: float(v) for k, v in loaded.summary().items()})
            for path in files:
                mlflow.log_artifact(str(path), artifact_path=EVAL_DIR)
            if mapping_path is not None:
                mlflow.log_artifact(str(mapping_path), artifact_path=EVAL_DIR)
        finally:
            mlflow.end_run(status="FAILED")
        run_id = run.info.run_id
        run_dir = runs_dir(settings) / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy2(path, run_dir / path.name)
    return TrainingRefused(loaded, run_id, run_dir)


def train_file(
    settings: Settings,
    domain: str,
    data: Path,
    mapping_path: Path | None,
    config: TrainConfig,
    *,
    tune_trials: int = 0,
    report: bool = True,
    progress: Progress | None = None,
) -> RunOutcome:
    """Train on a file; raises :class:`TrainingRefused` when rows fail validation."""
    say = progress or (lambda _msg: None)
    say("reading and validating the history")
    loaded = load_file(domain, data, mapping_path, labelled=True)
    if not loaded.ok:
        raise refuse(settings, domain, loaded, mapping_path)
    tuning = None
    if tune_trials:
        from training.tuning import tune

        say(f"tuning: {tune_trials} trial(s) inside the training period")
        config, tuning = tune(loaded.frame, config, tune_trials)
    say(f"training on {len(loaded.frame):,} rows")
    result = train(loaded.frame, config, data_fingerprint=loaded.data_sha256, validated=True, tuning=tuning)
    say("writing the report, logging to MLflow and registering")
    registered, run_dir = log_run(settings, loaded, result, config, mapping_path, report=report)
    return RunOutcome(registered.run_id, run_dir, registered, result, loaded, config)


def log_run(
    settings: Settings,
    loaded: LoadedFile,
    result: TrainResult,
    config: TrainConfig,
    mapping_path: Path | None,
    *,
    report: bool = True,
) -> tuple[RegisteredVersion, Path]:
    bundle = result.bundle
    builder = bundle.builder()
    head = loaded.frame.head(5)
    example = pd.DataFrame(
        builder.transform({c: head[c] for c in head.columns}), columns=builder.feature_names
    )
    meta = bundle.metadata
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = write_tables(folder, loaded)
        monthly = folder / "monthly_metrics.csv"
        result.monthly.to_csv(monthly, index=False)
        files.append(monthly)
        rows = folder / VALIDATION_ROWS
        extra = {"margin", "score", "score_cross_fitted"}
        keep = [c for c in result.valid_frame.columns if c in set(loaded.frame.columns) | extra]
        result.valid_frame[keep].to_parquet(rows, index=False)
        files.append(rows)
        if mapping_path is not None:
            shutil.copy2(mapping_path, folder / "mapping.yaml")
            files.append(folder / "mapping.yaml")
        if result.tuning is not None:
            (folder / "tuning.json").write_text(json.dumps(result.tuning, indent=1, default=str))
            files.append(folder / "tuning.json")
        report_path = folder / "report.html"
        if report:
            report_path.write_text(training_report(settings, loaded, result), encoding="utf-8")
            files.append(report_path)
        tags = {
            "data_file": str(loaded.path.resolve()),
            "data_sha256": loaded.data_sha256,
            "mapping_file": str(mapping_path.resolve()) if mapping_path else "",
            "mapping_sha256": loaded.mapping_sha256 or "",
            "validation_starts": str(meta["validation_starts"]),
            "feature_cutoff": str(meta["feature_cutoff"]),
            "rows_read": str(loaded.rows_read),
            "rows_excluded": str(len(loaded.excluded)),
        }
        params = {**result.params, **config.model_dump(), "rows_used": len(loaded.frame)}
        registered = log_and_register(
            settings,
            bundle,
            example,
            params=params,
            metrics={**result.metrics, "rows_excluded": float(len(loaded.excluded))},
            tags=tags,
            extra_artifacts=files,
            run_name=f"{loaded.path.name}",
            artifact_dir=EVAL_DIR,
        )
        run_dir = runs_dir(settings) / registered.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        for path in files:
            if path.suffix in (".html", ".csv", ".json", ".yaml"):
                shutil.copy2(path, run_dir / path.name)
    return registered, run_dir


def training_report(settings: Settings, loaded: LoadedFile, result: TrainResult) -> str:
    from training.report import Report, data_sections, model_sections

    bundle = result.bundle
    meta = bundle.metadata
    domain = bundle.domain
    cls = builder_class(domain)
    vf = result.valid_frame
    inspected = vf["inspected"].to_numpy(dtype=bool)
    y = vf[cls.label_field].fillna(0).to_numpy(dtype=np.int64)[inspected]
    margin = vf["margin"].to_numpy()[inspected]
    prob = vf["score_cross_fitted"].to_numpy()[inspected]
    revenue = (
        vf["revenue_recovered"].to_numpy(dtype=np.float64, na_value=np.nan)[inspected]
        if "revenue_recovered" in vf
        else None
    )
    random = vf["selection"].astype("str").to_numpy()[inspected] == "random"
    red, _ = settings.channel_shares(domain)
    report = Report(
        title=f"{meta['name']} — training report",
        facts={
            **_facts(loaded),
            "training period": f"{meta['training_period']['start']} — {meta['training_period']['end']}",
            "validation period": f"{meta['validation_period']['start']} — {meta['validation_period']['end']}",
            "features frozen for validation at": meta["validation_starts"],
            "trees (early stopping)": meta["params"]["best_iteration"],
            "calibration": meta["calibration"],
            "model SHA-256 (model.txt)": meta["model_sha256"],
        },
    )
    model_sections(
        report,
        y=y,
        margin=margin,
        prob=prob,
        times=vf[cls.time_field].to_numpy()[inspected],
        revenue=revenue,
        random_mask=random,
        red_share=red,
        booster=bundle.booster,
        X=None if result.valid_X is None else result.valid_X[inspected],
        feature_names=bundle.builder().feature_names,
        period=(
            "validation period (features frozen at its start, as the released model sees them; "
            "probabilities cross-fitted)"
        ),
    )
    data_sections(report, loaded, loaded.frame, cls.time_field)
    feats = pd.DataFrame(meta["features"])
    feats["sources"] = feats["sources"].map(", ".join)
    report.add("Features", _features_table(feats))
    if result.tuning is not None:
        t = result.tuning
        report.add(
            "Tuning",
            f"<p>{t['n_trials']} trial(s); objective: {t['objective']}; inner validation from "
            f"{t['inner_validation_starts']}. Defaults {t['default_value']:.4f} → "
            f"best {t['best_value']:.4f}.</p>" + _features_table(pd.DataFrame(t["trials"])),
        )
    return report.render()


def _features_table(df: pd.DataFrame) -> str:
    from training.report import table_html

    return table_html(df, max_rows=200)
