"""Exactness of models.treeshap against LightGBM's pred_contrib (and shap), on every split kind.

Each model is small and trained here (a few seconds in total); every check compares our margin and
contributions with ``booster.predict(..., pred_contrib=True)`` to 1e-9 absolute, plus additivity.
"""

from __future__ import annotations

import threading
import warnings
from fractions import Fraction

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import treeshap
from models.treeshap import TreeShapExplainer, pred_contrib_reference

with warnings.catch_warnings():  # importing shap emits matplotlib deprecation warnings
    warnings.simplefilter("ignore")
    import shap

ATOL = 1e-9


def _train(X, y, params, rounds, categorical=None, init_model=None):
    base = {"objective": "binary", "verbose": -1, "num_threads": 2, "seed": 7, "deterministic": True}
    ds = lgb.Dataset(X, y, categorical_feature=categorical if categorical is not None else "auto")
    return lgb.train({**base, **params}, ds, rounds, init_model=init_model)


def _missing_types(booster):
    found = set()
    stack = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            found.add((node["decision_type"], node["missing_type"]))
            stack += [node["left_child"], node["right_child"]]
    return found


def _check(booster, X, explainer=None, compare_shap=True):
    """Margin, contributions and additivity of our explainer against LightGBM (and shap)."""
    ex = explainer or TreeShapExplainer.from_booster(booster)
    X = np.ascontiguousarray(X, dtype=np.float64)
    ref = pred_contrib_reference(booster, X)
    raw_ref = booster.predict(X, raw_score=True, num_threads=1)

    raw, ours = ex.explain(X)
    np.testing.assert_allclose(ours, ref, atol=ATOL, rtol=0)
    np.testing.assert_allclose(ex.shap_values(X), ref, atol=ATOL, rtol=0)
    np.testing.assert_allclose(raw, raw_ref, atol=ATOL, rtol=0)
    np.testing.assert_allclose(ex.raw_score(X), raw_ref, atol=ATOL, rtol=0)
    np.testing.assert_allclose(ours.sum(axis=1), raw, atol=ATOL, rtol=0)
    assert ex.expected_value == pytest.approx(ref[0, -1], abs=ATOL)
    # Batches are explained in blocks of 8 rows (8 rows to the SIMD lanes; a block of 1 or 2 rows row by
    # row): partial blocks, with their spare lanes, at the end and within parallel chunks.
    for n in (1, 2, 3, 7, 10, 13, 27):
        raw_n, ours_n = ex.explain(X[:n])
        np.testing.assert_allclose(ours_n, ref[:n], atol=ATOL, rtol=0)
        np.testing.assert_allclose(raw_n, raw_ref[:n], atol=ATOL, rtol=0)
        np.testing.assert_allclose(ex.raw_score(X[:n]), raw_ref[:n], atol=ATOL, rtol=0)

    for i in range(min(len(X), 25)):
        r, phi = ex.explain_row(X[i])
        assert isinstance(r, float)
        assert phi.shape == (ex.n_features + 1,)
        np.testing.assert_allclose(phi, ref[i], atol=ATOL, rtol=0)
        assert r == pytest.approx(raw_ref[i], abs=ATOL)
        assert phi.sum() == pytest.approx(r, abs=ATOL)

    if compare_shap:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sv = np.asarray(shap.TreeExplainer(booster).shap_values(X))
        np.testing.assert_allclose(ours[:, :-1], sv, atol=1e-6, rtol=0)
    return ex


# ------------------------------------------------------------------ models


@pytest.fixture
def rng():
    """A fresh generator per test: data and rows do not depend on which tests ran before."""
    return np.random.default_rng(20240611)


@pytest.fixture(scope="module")
def numeric_model():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 8))
    y = (X[:, 0] + X[:, 1] * X[:, 2] - np.abs(X[:, 3]) + 0.5 * rng.normal(size=3000) > 0).astype(float)
    return _train(X, y, {"num_leaves": 31, "min_data_in_leaf": 5}, 40), X


CAT_COLS = [2, 5]


@pytest.fixture(scope="module")
def categorical_model():
    rng = np.random.default_rng(2)
    n = 4000
    X = rng.normal(size=(n, 7))
    X[:, 2] = rng.integers(0, 40, n)  # > 32 levels: bitsets of two words
    X[:, 5] = rng.integers(0, 6, n)
    X[rng.random(n) < 0.05, 5] = np.nan
    X[rng.random(n) < 0.08, 0] = np.nan
    logit = X[:, 1] + np.isin(X[:, 2], [1, 3, 7, 33, 38]) * 1.5 - (X[:, 5] == 2) + np.nan_to_num(X[:, 0])
    y = (logit + rng.logistic(size=n) > 0).astype(float)
    params = {"num_leaves": 31, "min_data_in_leaf": 10, "cat_smooth": 1.0, "min_data_per_group": 5}
    return _train(X, y, params, 40, categorical=CAT_COLS), X


@pytest.fixture(scope="module")
def nan_model():
    rng = np.random.default_rng(3)
    n = 3000
    X = rng.normal(size=(n, 6))
    for j in range(3):
        X[rng.random(n) < 0.15, j] = np.nan
    y = np.nan_to_num(X[:, 0], nan=1.5) - np.nan_to_num(X[:, 1], nan=-1) + X[:, 4] + rng.normal(size=n) > 0
    return _train(X, y.astype(float), {"num_leaves": 15}, 30), X


@pytest.fixture(scope="module")
def zero_model():
    rng = np.random.default_rng(4)
    n = 3000
    X = rng.normal(size=(n, 6))
    for j in range(3):
        X[rng.random(n) < 0.3, j] = 0.0
    y = ((X[:, 0] == 0) + X[:, 1] - X[:, 2] + 0.5 * rng.normal(size=n) > 0.3).astype(float)
    return _train(X, y, {"num_leaves": 15, "zero_as_missing": True}, 30), X


@pytest.fixture(scope="module")
def no_missing_model():
    rng = np.random.default_rng(5)
    n = 3000
    X = rng.normal(size=(n, 6))
    y = (X[:, 0] - X[:, 1] + X[:, 2] * X[:, 3] + 0.5 * rng.normal(size=n) > 0).astype(float)
    return _train(X, y, {"num_leaves": 15, "use_missing": False}, 30), X


@pytest.fixture(scope="module")
def deep_model():
    rng = np.random.default_rng(6)
    # 255 leaves down to one row each on random labels: depth ~28, ~20 distinct features on a path.
    n, f = 5000, 30
    X = rng.normal(size=(n, f))
    y = (rng.random(n) < 0.5).astype(float)
    params = {"num_leaves": 255, "min_data_in_leaf": 1, "min_sum_hessian_in_leaf": 0.0}
    return _train(X, y, params, 4), X


def _decision_list_data(rng, n=20000, f=48):
    """Label set by the first feature above 1.3: leaf-wise trees grow caterpillar paths through ~40
    distinct features, with covers shrinking geometrically down to a handful of rows."""
    X = rng.normal(size=(n, f))
    y = np.full(n, -1)
    for j in range(f):
        y[(y < 0) & (X[:, j] > 1.3)] = j % 2
    y = np.maximum(y, 0)
    return X, np.where(rng.random(n) < 0.02, 1 - y, y).astype(float)


@pytest.fixture(scope="module")
def very_deep_model():
    rng = np.random.default_rng(8)  # (deterministic) paths through 37 distinct features
    X, y = _decision_list_data(rng)
    params = {"num_leaves": 48, "min_data_in_leaf": 1, "min_sum_hessian_in_leaf": 0.0, "max_bin": 63}
    deep = _train(X, y, params, 1)
    # boosting continues with small trees: one model mixing 24- and 8-point quadratures
    return _train(X, y, {"num_leaves": 7}, 3, init_model=deep), X


def _test_rows(rng, X, n=200):
    rows = X[rng.choice(len(X), n, replace=False)].copy()
    return rows


# ------------------------------------------------------------------ exactness per split kind


def test_numeric(numeric_model, rng):
    booster, X = numeric_model
    rows = _test_rows(rng, X)
    special = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-40, -1e-36, 1e300]
    for i, v in enumerate(special):  # NaN with missing_type None is read as 0.0, |v| <= 1e-35f as 0.0
        rows[i, :] = v
        rows[len(special) + i, i] = v
    ex = _check(booster, rows)
    assert {m for _, m in _missing_types(booster)} == {"None"}
    assert ex.n_features == 8


def test_categorical(categorical_model, rng):
    booster, X = categorical_model
    kinds = _missing_types(booster)
    assert ("==", "None") in kinds or ("==", "NaN") in kinds, kinds
    rows = _test_rows(rng, X)
    odd = [
        -1.0,  # negative code -> right
        -3.0,
        -0.5,  # truncates to category 0
        -0.99,
        2.7,  # truncates to 2
        33.0,  # second bitset word
        63.0,
        64.0,  # beyond every bitset: unseen -> right
        1000.0,
        1e10,  # beyond int32
        -1e10,
        np.nan,
        np.inf,
        -np.inf,
        1e-40,
    ]
    for i, v in enumerate(odd):
        rows[i, 2] = v
        rows[len(odd) + i, 5] = v
        rows[2 * len(odd) + i, [2, 5]] = v
    _check(booster, rows)


def test_categorical_bitset_edges(categorical_model):
    """Every code 0..70 (and halves) on both categorical features, with the other features fixed."""
    booster, X = categorical_model
    codes = np.concatenate([np.arange(-2, 71), np.arange(-2, 71) + 0.5])
    rows = np.repeat(np.nan_to_num(X[:1]), len(codes), axis=0)
    rows[:, 2] = codes
    rows[:, 5] = codes[::-1]
    _check(booster, rows, compare_shap=False)


def test_nan_missing(nan_model, rng):
    booster, X = nan_model
    assert ("<=", "NaN") in _missing_types(booster)
    rows = _test_rows(rng, X)
    rows[:20, :3] = np.nan
    rows[20:30, :3] = 0.0
    rows[30:35, :3] = np.inf
    _check(booster, rows)


def test_zero_missing(zero_model, rng):
    booster, X = zero_model
    assert ("<=", "Zero") in _missing_types(booster)
    rows = _test_rows(rng, X)
    rows[:10, :3] = 0.0
    rows[10:20, :3] = np.nan  # NaN -> 0.0 -> missing (Zero)
    rows[20:25, :3] = 1e-36  # zero for LightGBM
    rows[25:30, :3] = -1e-36
    rows[30:35, :3] = 1e-30  # not zero
    rows[35:40, :3] = -0.0
    _check(booster, rows)


def test_use_missing_false(no_missing_model, rng):
    booster, X = no_missing_model
    assert {m for _, m in _missing_types(booster)} == {"None"}
    rows = _test_rows(rng, X)
    rows[:30:3, :] = np.nan  # treated as 0.0
    rows[1:30:3, :] = 0.0
    rows[2:30:3, :] = np.inf
    _check(booster, rows)


def test_infinite_threshold(rng):
    """ "Every value left, NaN right" splits carry a +inf threshold, which dump_model() clips to 1e300;
    a row with +inf must still go left there (taken from the model text, or read as +inf)."""
    n = 3000
    X = rng.normal(size=(n, 4))
    X[rng.random(n) < 0.3, 0] = np.nan
    y = (np.isnan(X[:, 0]) ^ (rng.random(n) < 0.1)).astype(float)
    booster = _train(X, y, {"num_leaves": 4}, 5)
    thresholds = [
        node["threshold"]
        for t in booster.dump_model()["tree_info"]
        for node in _nodes(t["tree_structure"])
        if node.get("decision_type") == "<="
    ]
    assert max(thresholds) >= 1e300
    rows = _test_rows(rng, X, 60)
    rows[:20, 0] = [np.inf, -np.inf, np.nan, 1e300, 1.7e308, -1.7e308, 0.0, 1e-40] * 2 + [np.inf] * 4
    _check(booster, rows)
    _check(
        booster, rows, explainer=TreeShapExplainer.from_model_dump(booster.dump_model()), compare_shap=False
    )


def _nodes(root):
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        if "split_feature" in node:
            stack += [node["left_child"], node["right_child"]]


def test_random_configurations(rng):
    """A sweep of small models over LightGBM options (dart, goss, extra trees, one-hot categoricals,
    depth limits, bagging, regression objectives) with hostile test rows."""
    for _ in range(12):
        n, f = int(rng.integers(300, 1500)), int(rng.integers(2, 12))
        X = rng.normal(size=(n, f)) * rng.choice([1.0, 10.0, 1e-3], size=f)
        cats = sorted(rng.choice(f, int(rng.integers(0, min(3, f))), replace=False).tolist())
        for c in cats:
            X[:, c] = rng.integers(0, int(rng.integers(2, 60)), n)
        for j in range(f):
            u = rng.random()
            if u < 0.25:
                X[rng.random(n) < 0.2, j] = np.nan
            elif u < 0.5:
                X[rng.random(n) < 0.3, j] = 0.0
        y = (np.nan_to_num(X) @ rng.normal(size=f) + rng.logistic(size=n) > 0).astype(float)
        params = {
            "objective": str(rng.choice(["binary", "regression", "cross_entropy"])),
            "boosting": str(rng.choice(["gbdt", "dart", "goss"])),
            "num_leaves": int(rng.integers(2, 48)),
            "min_data_in_leaf": int(rng.integers(1, 20)),
            "max_depth": int(rng.choice([-1, 3, 7])),
            "max_cat_to_onehot": int(rng.integers(1, 8)),
            "min_data_per_group": int(rng.integers(1, 30)),
            "zero_as_missing": bool(rng.random() < 0.3),
            "use_missing": bool(rng.random() < 0.85),
            "extra_trees": bool(rng.random() < 0.3),
            "feature_fraction": float(rng.uniform(0.5, 1.0)),
        }
        if params["boosting"] == "gbdt":
            params.update(bagging_fraction=0.7, bagging_freq=1)
        booster = _train(X, y, params, int(rng.integers(1, 30)), categorical=cats or None)
        rows = _test_rows(rng, X, 100)
        hostile = rng.random(rows.shape) < 0.1
        rows[hostile] = rng.choice([np.nan, 0.0, np.inf, -np.inf, -1.0, 1e9, 1e-40, 2.5], size=hostile.sum())
        _check(booster, rows, compare_shap=False)


def test_deep_tree(deep_model, rng):
    booster, X = deep_model
    ex = TreeShapExplainer.from_booster(booster)
    # more than 8 quadrature points: two 8-lane iterations per node for one row
    assert ex.max_distinct_depth > 16, ex.max_distinct_depth
    assert ex.points_per_tree.max() == -(-ex.max_distinct_depth // 2)
    rows = np.concatenate([X[:150], rng.normal(size=(100, X.shape[1])) * 2])
    rows[:10, :5] = np.nan
    _check(booster, rows, explainer=ex)


def _exact_shap(tree: dict, x: np.ndarray, n_features: int) -> np.ndarray:
    """Path-dependent SHAP of one numeric tree (no missing values) in exact rational arithmetic:
    phi_i = sum over leaves of value * (O_i - P_i) * integral_0^1 prod_{j != i} (P_j + t (O_j - P_j)) dt,
    with polynomial coefficients (independent of the quadrature the explainer uses)."""
    phi = [Fraction(0)] * n_features

    def times(poly, a, b):  # poly * (a + b t)
        out = [Fraction(0)] * (len(poly) + 1)
        for k, c in enumerate(poly):
            out[k] += c * a
            out[k + 1] += c * b
        return out

    stack: list[tuple[dict, tuple[tuple[int, Fraction, int], ...]]] = [(tree, ())]
    while stack:
        node, path = stack.pop()
        if "leaf_value" not in node:
            left = x[node["split_feature"]] <= node["threshold"]
            for child, is_left in ((node["left_child"], True), (node["right_child"], False)):
                ratio = Fraction(child.get("internal_count", child.get("leaf_count")), node["internal_count"])
                stack.append((child, (*path, (node["split_feature"], ratio, int(left == is_left)))))
            continue
        merged: dict[int, tuple[Fraction, int]] = {}  # feature -> (zero fraction, one fraction)
        for feat, ratio, one in path:
            z, o = merged.get(feat, (Fraction(1), 1))
            merged[feat] = (z * ratio, o * one)
        items = list(merged.items())
        prefix = [[Fraction(1)]]
        for _, (z, o) in items:
            prefix.append(times(prefix[-1], z, o - z))
        suffix = [[Fraction(1)]]
        for _, (z, o) in reversed(items):
            suffix.append(times(suffix[-1], z, o - z))
        suffix.reverse()
        value = Fraction(node["leaf_value"])
        for i, (feat, (z, o)) in enumerate(items):
            integral = sum(
                (
                    a * b / (ka + kb + 1)
                    for ka, a in enumerate(prefix[i])
                    for kb, b in enumerate(suffix[i + 1])
                ),
                Fraction(0),
            )
            phi[feat] += value * (o - z) * integral
    return np.array([float(p) for p in phi])


def test_very_deep_paths(very_deep_model, rng):
    """~36 distinct features on a path: ~18 quadrature points (3 SIMD iterations for one row), nothing
    exponential in depth, hence no fallback; checked against LightGBM and against exact rational
    arithmetic.  The small trees after it use their own, fewer points."""
    booster, X = very_deep_model
    ex = TreeShapExplainer.from_booster(booster)
    assert ex.max_distinct_depth > 32, ex.max_distinct_depth
    points = ex.points_per_tree
    assert points[0] == -(-ex.max_distinct_depth // 2) > 16, points
    assert 1 <= points[1:].max() <= 3, points  # 7 leaves: at most 6 distinct features on a path
    rows = np.concatenate([X[:150], rng.normal(size=(100, X.shape[1])) * 2])
    rows[:10, :5] = np.nan
    _check(booster, rows, explainer=ex)

    first = lgb.Booster(model_str=booster.model_to_string(num_iteration=1))
    tree = first.dump_model()["tree_info"][0]["tree_structure"]
    ex1 = TreeShapExplainer.from_booster(first)
    for x in X[:2]:
        exact = _exact_shap(tree, x, X.shape[1])
        np.testing.assert_allclose(ex1.explain_row(x)[1][:-1], exact, atol=1e-13, rtol=0)


def test_single_leaf_tree(rng):
    n = 2000
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] + rng.normal(size=n) > 0).astype(float)
    # The first model cannot split at all (min_data_in_leaf > n / 2): one single-leaf tree; boosting
    # continues from it with normal trees.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = _train(X, y, {"min_data_in_leaf": n}, 3)
    assert first.num_trees() == 1
    booster = _train(X, y, {"num_leaves": 7}, 10, init_model=first)
    leaves = [t["num_leaves"] for t in booster.dump_model()["tree_info"]]
    assert leaves[0] == 1 and max(leaves) > 1
    rows = _test_rows(rng, X, 50)
    _check(booster, rows)
    _check(first, rows)


def test_from_model_dump_hand_written():
    """A dump written by hand: one single-leaf tree, one stump, one categorical split."""
    dump = {
        "num_class": 1,
        "num_tree_per_iteration": 1,
        "max_feature_idx": 2,
        "average_output": False,
        "tree_info": [
            {"num_leaves": 1, "tree_structure": {"leaf_value": 0.25}},
            {
                "num_leaves": 2,
                "tree_structure": {
                    "split_feature": 0,
                    "threshold": 1.5,
                    "decision_type": "<=",
                    "default_left": False,
                    "missing_type": "NaN",
                    "internal_count": 10,
                    "left_child": {"leaf_index": 0, "leaf_value": -1.0, "leaf_count": 4},
                    "right_child": {"leaf_index": 1, "leaf_value": 2.0, "leaf_count": 6},
                },
            },
            {
                "num_leaves": 2,
                "tree_structure": {
                    "split_feature": 2,
                    "threshold": "1||40",
                    "decision_type": "==",
                    "default_left": False,
                    "missing_type": "None",
                    "internal_count": 8,
                    "left_child": {"leaf_index": 0, "leaf_value": 3.0, "leaf_count": 2},
                    "right_child": {"leaf_index": 1, "leaf_value": 1.0, "leaf_count": 6},
                },
            },
        ],
    }
    ex = TreeShapExplainer.from_model_dump(dump)
    base = 0.25 + (0.4 * -1.0 + 0.6 * 2.0) + (0.25 * 3.0 + 0.75 * 1.0)
    assert ex.expected_value == pytest.approx(base, abs=1e-15)
    X = np.array(
        [
            [1.0, 0.0, 1.0],  # left, in set
            [2.0, 0.0, 40.0],  # right, in set (second word)
            [np.nan, 0.0, 41.0],  # NaN -> default right, not in set
            [1.5, 0.0, np.nan],  # threshold is inclusive; NaN category -> right
            [-np.inf, 0.0, -1.0],
        ]
    )
    raw = np.array([0.25 - 1 + 3, 0.25 + 2 + 3, 0.25 + 2 + 1, 0.25 - 1 + 1, 0.25 - 1 + 1])
    np.testing.assert_allclose(ex.raw_score(X), raw, atol=1e-15)
    phi = ex.shap_values(X)
    # One-split trees: phi = leaf reached - expectation, on the split feature.
    np.testing.assert_allclose(phi[:, 0], np.where(X[:, 0] <= 1.5, -1.0, 2.0) - 0.8, atol=1e-15)
    np.testing.assert_allclose(phi[:, 2], np.where(np.isin(X[:, 2], [1, 40]), 3.0, 1.0) - 1.5, atol=1e-15)
    assert np.all(phi[:, 1] == 0.0)
    np.testing.assert_allclose(phi.sum(axis=1), raw, atol=1e-14)


def test_random_forest_average_output(rng):
    n = 2000
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] - X[:, 1] + rng.normal(size=n) > 0).astype(float)
    params = {"boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.6, "num_leaves": 15}
    booster = _train(X, y, params, 20)
    ex = _check(booster, _test_rows(rng, X, 100))
    assert ex.average_output


def test_unsupported_models_raise(rng):
    X = rng.normal(size=(600, 4))
    multi = _train(X, rng.integers(0, 3, 600), {"objective": "multiclass", "num_class": 3}, 2)
    with pytest.raises(ValueError, match="multiclass"):
        TreeShapExplainer.from_booster(multi)
    linear = _train(X, (X[:, 0] > 0).astype(float), {"linear_tree": True, "num_leaves": 4}, 2)
    with pytest.raises(ValueError, match="linear"):
        TreeShapExplainer.from_booster(linear)
    with pytest.raises(ValueError, match="linear"):
        TreeShapExplainer.from_model_dump(linear.dump_model())


def test_input_validation_and_empty_batch(numeric_model):
    booster, _ = numeric_model
    ex = TreeShapExplainer.from_booster(booster)
    ex.warmup()
    with pytest.raises(ValueError):
        ex.explain_row(np.zeros(ex.n_features + 1))
    with pytest.raises(ValueError):
        ex.shap_values(np.zeros((3, ex.n_features - 1)))
    assert ex.shap_values(np.zeros((0, ex.n_features))).shape == (0, ex.n_features + 1)
    # lists, float32 and non-contiguous inputs are converted
    X = np.asfortranarray(np.random.default_rng(1).normal(size=(5, ex.n_features)).astype(np.float32))
    ref = pred_contrib_reference(booster, X.astype(np.float64))
    np.testing.assert_allclose(ex.shap_values(X), ref, atol=ATOL, rtol=0)
    np.testing.assert_allclose(ex.explain_row(list(X[0].astype(np.float64)))[1], ref[0], atol=ATOL, rtol=0)


def test_concurrent_explain_row(categorical_model, rng):
    """explain_row holds no shared scratch: threads may call it at once (nogil kernels)."""
    booster, X = categorical_model
    ex = TreeShapExplainer.from_booster(booster)
    rows = _test_rows(rng, X, 64)
    ref = pred_contrib_reference(booster, rows)
    errors: list[float] = []

    def work():
        for _ in range(5):
            for i, row in enumerate(rows):
                errors.append(float(np.abs(ex.explain_row(row)[1] - ref[i]).max()))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4 * 5 * len(rows)
    assert max(errors) <= ATOL


_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-3, max_value=3),
    st.integers(min_value=-3, max_value=70).map(float),
    st.sampled_from([0.0, -0.0, 1e-36, -1e-36, 1e-40]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_rows_hypothesis(categorical_model, zero_model, data):
    for booster, _ in (categorical_model, zero_model):
        nf = booster.num_feature()
        row = np.array(data.draw(st.lists(_VALUES, min_size=nf, max_size=nf)), dtype=np.float64)
        ex = _explainer(booster)
        ref = pred_contrib_reference(booster, row[None, :])[0]
        raw, phi = ex.explain_row(row)
        np.testing.assert_allclose(phi, ref, atol=ATOL, rtol=0)
        assert raw == pytest.approx(booster.predict(row[None, :], raw_score=True)[0], abs=ATOL)


_EXPLAINERS: dict[int, TreeShapExplainer] = {}


def _explainer(booster):
    key = id(booster)
    if key not in _EXPLAINERS:
        _EXPLAINERS[key] = TreeShapExplainer.from_booster(booster)
    return _EXPLAINERS[key]


def test_small_batches_and_one_cpu_stay_on_the_calling_thread_with_the_same_bits(
    categorical_model, rng, monkeypatch
):
    """A large batch runs in parallel where the process may use several CPUs; a small one, or any
    batch in a process bound to one CPU (a service worker), runs on the calling thread, where numba's
    threads would only take turns. Both give the same bits: the same rows, the same blocks of 8."""
    booster, X = categorical_model
    ex = TreeShapExplainer.from_booster(booster)
    rows = _test_rows(rng, X, 200)
    launched: list[str] = []
    for name in ("shap_batch_kernel", "raw_batch_kernel"):
        real = getattr(treeshap._k, name)

        def spy(*args, _real=real, _name=name):  # type: ignore[no-untyped-def]
            launched.append(_name)
            return _real(*args)

        monkeypatch.setattr(treeshap._k, name, spy)

    monkeypatch.setattr(treeshap, "_usable_cpus", lambda: 2)
    raw_parallel, parallel = ex.explain(rows)
    margin_parallel = ex.raw_score(rows)
    assert launched == ["shap_batch_kernel", "raw_batch_kernel"]
    small = ex.explain(rows[:40])[1]  # whole blocks of 8, fewer than PARALLEL_MIN_ROWS
    assert treeshap.PARALLEL_MIN_ROWS > 40
    monkeypatch.setattr(treeshap, "_usable_cpus", lambda: 1)
    raw_serial, serial = ex.explain(rows)
    margin_serial = ex.raw_score(rows)
    assert launched == ["shap_batch_kernel", "raw_batch_kernel"]  # nothing more launched

    assert np.array_equal(serial, parallel) and np.array_equal(raw_serial, raw_parallel)
    assert np.array_equal(margin_serial, margin_parallel)
    assert np.array_equal(small, parallel[: len(small)])
    np.testing.assert_allclose(serial, pred_contrib_reference(booster, rows), atol=ATOL, rtol=0)
