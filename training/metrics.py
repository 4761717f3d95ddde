"""Ranking and calibration metrics at inspection budgets.

Customs work to a budget: of the declarations ranked by risk, the top *k* % can be inspected. The
metrics that matter are therefore precision, recall and revenue captured at those rates, plus how
honest the probabilities are (Brier score, expected calibration error).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

RATES = (0.01, 0.02, 0.05, 0.10)


def top_k_mask(score: np.ndarray, rate: float) -> np.ndarray:
    """The ``rate`` share of rows with the highest score (at least one row; ties broken stably)."""
    k = max(1, round(rate * len(score)))
    order = np.argsort(-score, kind="stable")
    mask = np.zeros(len(score), dtype=bool)
    mask[order[:k]] = True
    return mask


def precision_at(y: np.ndarray, score: np.ndarray, rate: float) -> float:
    return float(np.mean(y[top_k_mask(score, rate)]))


def recall_at(y: np.ndarray, score: np.ndarray, rate: float) -> float:
    total = y.sum()
    return float(y[top_k_mask(score, rate)].sum() / total) if total else float("nan")


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    err = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            err += m.mean() * abs(p[m].mean() - y[m].mean())
    return float(err)


def ranking_metrics(
    y: np.ndarray, score: np.ndarray, prob: np.ndarray | None = None, revenue: np.ndarray | None = None
) -> dict[str, float]:
    """ROC-AUC, PR-AUC and precision/recall(/revenue) at each budget, for labelled rows."""
    y = np.asarray(y, dtype=np.int64)
    out: dict[str, float] = {"rows": float(len(y)), "positives": float(y.sum())}
    if len(np.unique(y)) == 2:
        out["roc_auc"] = float(roc_auc_score(y, score))
        out["pr_auc"] = float(average_precision_score(y, score))
    for rate in RATES:
        pct = f"{rate * 100:g}"
        out[f"precision_at_{pct}pct"] = precision_at(y, score, rate)
        out[f"recall_at_{pct}pct"] = recall_at(y, score, rate)
        if revenue is not None and np.nansum(revenue) > 0:
            rev = np.nan_to_num(np.asarray(revenue, dtype=np.float64))
            out[f"revenue_at_{pct}pct"] = float(rev[top_k_mask(score, rate)].sum() / rev.sum())
    if prob is not None and len(y):
        out["brier"] = float(brier_score_loss(y, prob))
        out["ece"] = expected_calibration_error(y, prob)
    return out


def monthly_metrics(
    times: np.ndarray, y: np.ndarray, score: np.ndarray, prob: np.ndarray | None = None
) -> pd.DataFrame:
    """The ranking metrics of each calendar month: is the model as good every month, or only on average?

    One row per month (``YYYY-MM``) with rows, positives, ROC-AUC, PR-AUC and precision at each budget
    (each month ranked on its own, as a month's inspection capacity is spent on that month's flow).
    """
    months = pd.to_datetime(pd.Series(times)).dt.strftime("%Y-%m").to_numpy()
    y = np.asarray(y, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    rows = []
    for month in sorted(set(months.tolist())):
        m = months == month
        out = ranking_metrics(y[m], score[m], None if prob is None else np.asarray(prob)[m])
        rows.append({"month": month, **out})
    return pd.DataFrame(rows)


def stability_summary(monthly: pd.DataFrame) -> dict[str, float]:
    """Worst month, best month and spread of the headline metrics (months with ≥ 100 rows)."""
    out: dict[str, float] = {}
    if monthly.empty:
        return out
    full = monthly[monthly["rows"] >= 100]
    out["months"] = float(len(full))
    for col in ("roc_auc", "precision_at_5pct", "precision_at_10pct"):
        if col in full and full[col].notna().any():
            values = full[col].dropna()
            out[f"{col}_min"] = float(values.min())
            out[f"{col}_max"] = float(values.max())
            out[f"{col}_std"] = float(values.std(ddof=0))
    return out


def precision_curve(y: np.ndarray, score: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Precision at each inspection rate of ``rates`` (the precision-at-budget curve)."""
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    hits = np.cumsum(y[order])
    k = np.maximum(1, np.round(np.asarray(rates) * len(y)).astype(np.int64))
    k = np.minimum(k, len(y))
    return hits[k - 1] / k


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate in equal-count bins of the predicted probability."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    parts = np.array_split(order, bins)
    return pd.DataFrame(
        [
            {"predicted": float(p[i].mean()), "observed": float(y[i].mean()), "rows": len(i)}
            for i in parts
            if len(i)
        ]
    )
