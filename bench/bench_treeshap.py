"""Benchmark of models.treeshap against LightGBM's pred_contrib and shap.TreeExplainer.

Trains the reference model (400 trees, 63 leaves, 35 features of which 5 categorical, 50k synthetic
rows, trained with 2 threads), then measures, one row at a time on one thread:

* ``Booster.predict`` (score only),
* ``Booster.predict(pred_contrib=True)`` (LightGBM's TreeSHAP),
* ``shap.TreeExplainer(booster).shap_values(row)``,
* ``TreeShapExplainer.explain_row`` (score + full exact explanation),

and the batch throughput of ``TreeShapExplainer.shap_values`` on 100k rows with 2 threads (and of
pred_contrib with 2 threads on a smaller batch).  It also reports the largest difference between our
contributions and pred_contrib on every measured row.  Prints markdown tables; takes about 75 s on an
idle 2-core machine.

Wall-clock and CPU time are both reported: on a shared machine the CPU time per call is the steadier
figure.  Each part has a time budget, so the script stays near two minutes even when the cores are
busy (then with fewer rows, which the tables show).

    .venv/bin/python bench/bench_treeshap.py [--rows 2000] [--batch 100000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import lightgbm as lgb
import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.treeshap import TreeShapExplainer

N_TRAIN = 50_000
N_NUMERIC = 30
CAT_LEVELS = (8, 12, 20, 40, 60)
CAT_COLS = list(range(N_NUMERIC, N_NUMERIC + len(CAT_LEVELS)))


def make_data(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Declarations-like synthetic data: skewed amounts, ratios, counts with zeros, some NaNs, and
    categorical codes (origin, HS chapter, carrier, ...) with level-specific risk."""
    X = np.empty((n, N_NUMERIC + len(CAT_LEVELS)))
    X[:, :10] = rng.normal(size=(n, 10))
    X[:, 10:20] = rng.lognormal(0.0, 1.0, size=(n, 10))
    X[:, 20:25] = rng.poisson(1.0, size=(n, 5))  # counts, many zeros
    X[:, 25:30] = rng.uniform(-1, 1, size=(n, 5))
    for j, levels in zip(CAT_COLS, CAT_LEVELS, strict=True):
        X[:, j] = rng.integers(0, levels, n)
    X[rng.random(n) < 0.05, 3] = np.nan
    X[rng.random(n) < 0.03, 12] = np.nan
    cat_risk = [rng.normal(0, 0.8, levels) for levels in CAT_LEVELS]
    logit = (
        0.8 * X[:, 0]
        - 0.6 * X[:, 1] * X[:, 2]
        + np.sin(2 * np.nan_to_num(X[:, 3]))
        + 0.4 * np.log1p(np.nan_to_num(X[:, 10]))
        - 0.3 * (X[:, 20] == 0)
        + 0.2 * X[:, 4:10].sum(axis=1)
        + 0.5 * np.abs(X[:, 25])
        + sum(risk[X[:, j].astype(int)] for j, risk in zip(CAT_COLS, cat_risk, strict=True))
        - 1.0
    )
    y = (logit + rng.logistic(size=n) > 0).astype(float)
    return X, y


def train(X: np.ndarray, y: np.ndarray) -> lgb.Booster:
    params = {
        "objective": "binary",
        "num_leaves": 63,
        "learning_rate": 0.05,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "num_threads": 2,
        "verbose": -1,
        "seed": 1,
    }
    return lgb.train(params, lgb.Dataset(X, y, categorical_feature=CAT_COLS), num_boost_round=400)


class _OneThreadBooster(lgb.Booster):
    """shap.TreeExplainer calls ``Booster.predict(X, pred_contrib=True)`` itself: pin one thread."""

    def predict(self, *args, **kwargs):
        kwargs.setdefault("num_threads", 1)
        return super().predict(*args, **kwargs)


def per_row(fn, rows: list[np.ndarray], budget_s: float) -> tuple[np.ndarray, np.ndarray, list]:
    """fn(row) for each row (stopping early past budget_s): wall and thread-CPU seconds, outputs."""
    fn(rows[0])
    fn(rows[1])
    wall, cpu, outs = [], [], []
    gc.disable()
    try:
        start = time.perf_counter()
        for row in rows:
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            outs.append(fn(row))
            wall.append(time.perf_counter_ns() - t0)
            cpu.append(time.thread_time_ns() - c0)
            if time.perf_counter() - start > budget_s:
                break
    finally:
        gc.enable()
    return np.asarray(wall) * 1e-9, np.asarray(cpu) * 1e-9, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2000, help="rows timed one at a time per method")
    ap.add_argument("--batch", type=int, default=100_000, help="rows of the batch throughput test")
    ap.add_argument("--budget", type=float, default=30.0, help="max seconds per single-row method")
    ap.add_argument("--batch-budget", type=float, default=40.0, help="max seconds for the batch test")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    wall = time.perf_counter()

    X, y = make_data(N_TRAIN, rng)
    t0 = time.perf_counter()
    booster = train(X, y)
    t_train = time.perf_counter() - t0

    t0 = time.perf_counter()
    ex = TreeShapExplainer.from_booster(booster)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    ex.warmup()
    t_warm = time.perf_counter() - t0

    X_test, _ = make_data(max(args.rows, 2), rng)
    rows = [np.ascontiguousarray(r) for r in X_test]

    lat_pred, cpu_pred, _ = per_row(
        lambda r: booster.predict(r.reshape(1, -1), raw_score=True, num_threads=1), rows, args.budget
    )
    lat_contrib, cpu_contrib, ref = per_row(
        lambda r: booster.predict(r.reshape(1, -1), pred_contrib=True, num_threads=1), rows, args.budget
    )
    import shap  # slow import, only needed here

    shap_booster = _OneThreadBooster(model_str=booster.model_to_string())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer = shap.TreeExplainer(shap_booster)
        lat_shap, cpu_shap, _ = per_row(lambda r: explainer.shap_values(r.reshape(1, -1)), rows, args.budget)
    lat_ours, cpu_ours, ours = per_row(ex.explain_row, rows, args.budget)

    n_cmp = min(len(ref), len(ours))
    ref_m = np.vstack(ref[:n_cmp])
    ours_m = np.vstack([phi for _, phi in ours[:n_cmp]])
    max_diff = float(np.abs(ours_m - ref_m).max())
    additivity = max(abs(phi.sum() - raw) for raw, phi in ours[:n_cmp])

    numba.set_num_threads(min(2, numba.get_num_threads()))
    X_batch, _ = make_data(args.batch, rng)
    ex.shap_values(X_batch[:1000])
    # In chunks of 10k rows, stopping past --batch-budget seconds (only on a busy machine).
    c0, t0 = time.process_time(), time.perf_counter()
    parts = []
    for lo in range(0, args.batch, 10_000):
        parts.append(ex.shap_values(X_batch[lo : lo + 10_000]))
        if time.perf_counter() - t0 > args.batch_budget:
            break
    t_batch, c_batch = time.perf_counter() - t0, time.process_time() - c0
    batch_out = np.concatenate(parts)
    n_batch = len(batch_out)
    n_ref_batch = min(args.batch, 1000)
    c0, t0 = time.process_time(), time.perf_counter()
    batch_ref = booster.predict(X_batch[:n_ref_batch], pred_contrib=True, num_threads=2)
    t_batch_ref, c_batch_ref = time.perf_counter() - t0, time.process_time() - c0
    batch_diff = float(np.abs(batch_out[:n_ref_batch] - batch_ref).max())

    p = {
        name: (
            np.percentile(lat, 50) * 1e3,
            np.percentile(lat, 99) * 1e3,
            np.percentile(cpu, 50) * 1e3,
            len(lat),
        )
        for name, lat, cpu in (
            ("pred", lat_pred, cpu_pred),
            ("contrib", lat_contrib, cpu_contrib),
            ("shap", lat_shap, cpu_shap),
            ("ours", lat_ours, cpu_ours),
        )
    }
    base, base_cpu = p["contrib"][0], p["contrib"][2]
    labels = {
        "pred": "`Booster.predict` (score only)",
        "contrib": "`Booster.predict(pred_contrib=True)`",
        "shap": "`shap.TreeExplainer.shap_values` (NumPy row)",
        "ours": "**`TreeShapExplainer.explain_row`** (score + explanation)",
    }
    print(
        f"\nreference model: {booster.num_trees()} trees, 63 leaves, {X.shape[1]} features "
        f"({len(CAT_COLS)} categorical), trained on {N_TRAIN} rows with 2 threads in {t_train:.1f} s"
    )
    print(
        f"explainer: built in {t_build * 1e3:.0f} ms, warmup (compile or cache load) {t_warm:.2f} s, "
        f"max distinct features on a path {ex.max_distinct_depth}, "
        f"trees per quadrature point count {dict(sorted(Counter(ex.points_per_tree.tolist()).items()))}"
    )
    print()
    print(
        "| one row, one thread | rows | p50 (ms) | p99 (ms) | p50 vs pred_contrib "
        "| p50 CPU (ms) | CPU vs pred_contrib |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key in ("pred", "contrib", "shap", "ours"):
        p50, p99, c50, n = p[key]
        print(
            f"| {labels[key]} | {n} | {p50:.3f} | {p99:.3f} | {base / p50:.1f}x "
            f"| {c50:.3f} | {base_cpu / c50:.1f}x |"
        )
    print()
    print("| batch, 2 threads | rows | seconds | rows/s | CPU ms/row |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| `TreeShapExplainer.shap_values` | {n_batch} | {t_batch:.2f} | {n_batch / t_batch:,.0f} "
        f"| {c_batch / n_batch * 1e3:.3f} |"
    )
    print(
        f"| `Booster.predict(pred_contrib=True)` | {n_ref_batch} | {t_batch_ref:.2f} "
        f"| {n_ref_batch / t_batch_ref:,.0f} | {c_batch_ref / n_ref_batch * 1e3:.3f} |"
    )
    print()
    print(
        f"max |ours - pred_contrib| over {n_cmp} single rows: {max_diff:.2e}; over {n_ref_batch} batch "
        f"rows: {batch_diff:.2e}; max |sum(contribs) - margin|: {additivity:.2e}"
    )
    print(f"total bench time {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
