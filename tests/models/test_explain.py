"""Explanations are exact TreeSHAP values and add up to the model's margin."""

from __future__ import annotations

import numpy as np
import pytest
import shap

from models.explain import default_backend, fast_backend, pred_contrib_backend
from models.scoring import Scorer


def _matrix(trained, n=300):
    rows = trained.later.head(n)
    builder = trained.result.bundle.builder()
    return builder.transform({c: rows[c] for c in rows.columns})


def test_pred_contrib_equals_shap_tree_explainer(cargo_trained, passenger_trained):
    for trained in (cargo_trained, passenger_trained):
        booster = trained.result.bundle.booster
        X = _matrix(trained)
        ours = pred_contrib_backend(booster)(X)
        reference = shap.TreeExplainer(booster).shap_values(X)
        np.testing.assert_allclose(ours[:, :-1], reference, atol=1e-6, rtol=0)


def test_contributions_plus_base_equal_the_raw_margin(cargo_trained, passenger_trained):
    for trained in (cargo_trained, passenger_trained):
        booster = trained.result.bundle.booster
        X = _matrix(trained)
        contrib = pred_contrib_backend(booster)(X)
        np.testing.assert_allclose(contrib.sum(axis=1), booster.predict(X, raw_score=True), atol=1e-9)


def test_explanation_is_sorted_and_complete(cargo_trained):
    scorer = Scorer(cargo_trained.result.bundle, red_share=0.05, yellow_share=0.1)
    from features.schemas import CargoDeclaration
    from tests.conftest import record_of

    record = CargoDeclaration.model_validate(record_of(cargo_trained.later.iloc[3])).model_dump()
    score, _, explanation = scorer.score_record(record)
    items = explanation["contributions"]
    assert len(items) == len(scorer.builder.feature_names)
    sizes = [abs(i["contribution"]) for i in items]
    assert sizes == sorted(sizes, reverse=True)
    margin = explanation["base_value"] + sum(i["contribution"] for i in items)
    assert scorer.bundle.calibrator.apply(margin) == pytest.approx(score, rel=1e-12)
    assert all(i["reason"].endswith(("(raises risk)", "(lowers risk)")) for i in items)


def test_the_served_fast_backend_equals_pred_contrib_on_the_demo_models(cargo_trained, passenger_trained):
    for trained in (cargo_trained, passenger_trained):
        booster = trained.result.bundle.booster
        X = _matrix(trained, n=500)
        X[::7, 0] = np.nan  # missing values take LightGBM's default direction in both
        reference = pred_contrib_backend(booster)(X)
        fast = fast_backend(booster)
        np.testing.assert_allclose(fast(X), reference, atol=1e-9, rtol=0)
        for i in range(0, 500, 50):  # the one-row path the service uses
            np.testing.assert_allclose(fast(X[i : i + 1])[0], reference[i], atol=1e-9, rtol=0)
        assert default_backend(booster).name == "treeshap-linear"  # type: ignore[attr-defined]
