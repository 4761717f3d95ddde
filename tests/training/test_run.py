"""A training run leaves a self-contained report and a complete MLflow record; tuning stays inside."""

from __future__ import annotations

import re

import numpy as np

from training.registry import client, version_info

from .conftest import small_config


def test_the_run_folder_has_a_self_contained_report(small_registry):
    folder = small_registry.run_dirs["good"]
    html = (folder / "report.html").read_text()
    for section in (
        "Precision at each inspection budget",
        "Precision–recall curve",
        "Calibration",
        "Stability month by month",
        "What drives the scores (SHAP)",
        "Data summary",
        "random inspections",  # selection bias: the unbiased sample is reported apart
    ):
        assert section in html, section
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 5
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing to fetch: opens offline
    assert (folder / "monthly_metrics.csv").is_file()


def test_mlflow_has_params_metrics_fingerprints_features_model_and_report(small_registry):
    s = small_registry.settings
    reg, tags = version_info(s, "cargo", small_registry.versions["good"])
    run = client(s).get_run(reg.run_id)
    assert run.data.tags["data_sha256"] == tags["data_sha256"] and len(tags["data_sha256"]) == 64
    assert "mapping_sha256" in run.data.tags  # empty: the file needed no mapping
    assert len(tags["model_sha256"]) == 64
    assert run.data.params["learning_rate"] == "0.05" and run.data.params["seed"] == "5"
    for metric in ("valid_roc_auc", "valid_precision_at_5pct", "valid_revenue_at_5pct", "valid_brier"):
        assert metric in run.data.metrics, metric
    assert "valid_monthly_precision_at_5pct_min" in run.data.metrics
    assert "valid_random_precision_at_5pct" in run.data.metrics
    artifacts = {a.path for a in client(s).list_artifacts(reg.run_id)}
    assert {"bundle", "features.json", "evaluation"} <= artifacts
    # the Booster in MLflow's lightgbm flavour, with its signature and input example
    import mlflow

    info = mlflow.models.get_model_info(f"models:/{reg.name}/{reg.version}")
    assert "lightgbm" in info.flavors and info.signature is not None
    assert info.saved_input_example_info is not None
    evaluation = {a.path for a in client(s).list_artifacts(reg.run_id, "evaluation")}
    assert {"evaluation/report.html", "evaluation/validation_rows.parquet"} <= evaluation


def test_calibration_metrics_are_cross_fitted_not_in_sample(small_history):
    """Isotonic regression is perfectly calibrated on its own rows; the reported error is out of fold."""
    from training.pipeline import train

    history, _ = small_history
    result = train(history, small_config())
    vf = result.valid_frame[result.valid_frame["inspected"]]
    y = vf["fraud"].to_numpy(dtype=float)
    in_sample = float(np.mean((vf["score"] - y) ** 2))
    assert result.metrics["valid_brier"] == np.mean((vf["score_cross_fitted"] - y) ** 2)
    assert result.metrics["valid_brier"] >= in_sample


def test_tuning_searches_inside_the_training_period_only(small_history):
    from training.tuning import tune

    history, _ = small_history
    config, record = tune(history, small_config(), trials=3)
    assert record["n_trials"] == 3 and len(record["trials"]) == 3
    assert record["inner_validation_starts"] < record["outer_validation_starts"]
    assert record["trials"][0]["learning_rate"] == small_config().learning_rate  # the defaults first
    assert record["best_value"] >= record["default_value"]
    assert {k: getattr(config, k) for k in record["best_params"]} == record["best_params"]
