"""Ranking and calibration metrics at inspection budgets.

Customs work to a budget: of the declarations ranked by risk, the top *k* % can be inspected. The
metrics that matter are therefore precision, recall and revenue captured at those rates, plus how
honest the probabilities are (Brier score, expected calibration error).
"""

from __future__ import annotations

import numpy as np
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
