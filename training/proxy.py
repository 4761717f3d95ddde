"""Proxy check: how well a model's own features predict each monitored attribute.

A model that never sees nationality can still select by nationality if its features carry it (an
origin airport, an issuing country). At training time a small LightGBM classifier learns each
monitored attribute from the model matrix on a sample; its ROC-AUC on held-out rows (one-vs-rest for
the most frequent values of a multi-valued attribute) says how much of the attribute the features
reveal: 0.5 nothing, 1.0 all of it. An attribute at or above the policy's ``flag_auc`` is flagged in
the model card and the MLflow run, with the features that carry it — a finding for oversight to
weigh, not a refusal: some proxies are legitimate risk factors (the route of a flight), which is
exactly why the proportionality report measures outcomes by group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score

from training.policy import ProxyCheck

_PARAMS = {
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 1.0,
    "verbosity": -1,
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
}
ROUNDS = 40


def _classes(values: np.ndarray, config: ProxyCheck) -> list[str]:
    known = values[values != ""]
    names, counts = np.unique(known, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return [str(names[i]) for i in order[: config.max_classes] if counts[i] >= config.min_class_rows]


def proxy_check(
    X: np.ndarray,
    feature_names: Sequence[str],
    categorical_indices: Sequence[int],
    attributes: Mapping[str, np.ndarray],
    config: ProxyCheck,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per attribute: the highest one-vs-rest ROC-AUC, per-value AUCs, flag and carrying features.

    ``attributes`` maps each monitored attribute to its per-row values (str; "" when unknown).
    """
    rng = np.random.default_rng(seed)
    n = len(X)
    rows = np.sort(rng.choice(n, size=min(n, config.sample_rows), replace=False))
    holdout = rng.random(len(rows)) < 0.3
    out: dict[str, dict[str, Any]] = {}
    for attribute, raw in attributes.items():
        values = np.asarray(raw, dtype=object)[rows].astype(str)
        values = np.where(values == "None", "", values)
        classes = _classes(values, config)
        known = values != ""
        if len(classes) < 2 and not (len(classes) == 1 and (values[known] != classes[0]).any()):
            out[attribute] = {"auc": None, "flagged": False, "note": "too few values to measure"}
            continue
        index = {c: i for i, c in enumerate(classes)}
        other = len(classes)
        y = np.array([index.get(v, other) for v in values], dtype=np.int64)
        n_class = other + 1 if (y == other).any() else other
        fit, test = known & ~holdout, known & holdout
        data = lgb.Dataset(
            X[rows][fit],
            y[fit],
            feature_name=list(feature_names),
            categorical_feature=list(categorical_indices),
            params={"verbosity": -1},
        )
        params: dict[str, Any] = {**_PARAMS, "seed": seed}
        if n_class == 2:
            params["objective"] = "binary"
        else:
            params |= {"objective": "multiclass", "num_class": n_class}
        booster = lgb.train(params, data, num_boost_round=ROUNDS)
        prob = np.asarray(booster.predict(X[rows][test]))
        prob = np.column_stack([1 - prob, prob]) if prob.ndim == 1 else prob
        y_test = y[test]
        per_value: dict[str, float] = {}
        for c, i in index.items():
            target = y_test == i
            if 0 < target.sum() < len(target):
                per_value[c] = float(roc_auc_score(target, prob[:, i]))
            if n_class == 2:
                break  # both sides of a binary attribute have the same AUC
        if not per_value:
            out[attribute] = {"auc": None, "flagged": False, "note": "too few held-out rows"}
            continue
        worst = max(per_value, key=lambda k: per_value[k])
        gain = booster.feature_importance(importance_type="gain")
        share = gain / gain.sum() if gain.sum() > 0 else gain
        top = np.argsort(-share, kind="stable")[:3]
        out[attribute] = {
            "auc": round(per_value[worst], 4),
            "value": worst,
            "per_value": {k: round(v, 4) for k, v in sorted(per_value.items(), key=lambda kv: -kv[1])},
            "flagged": per_value[worst] >= config.flag_auc,
            "threshold": config.flag_auc,
            "carried_by": [
                {"feature": feature_names[i], "share": round(float(share[i]), 3)} for i in top if share[i] > 0
            ],
            "sample_rows": len(rows),
        }
    return out
