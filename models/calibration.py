"""Probability calibration stored as plain JSON (no pickled estimators).

Isotonic regression is kept as its breakpoints and applied with ``np.interp``; Platt scaling as two
numbers applied to the raw margin. The method is chosen on the validation period by cross-fitted
Brier score, so that the flexible isotonic fit does not win only because it saw the same rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression


@dataclass(frozen=True)
class Calibrator:
    method: Literal["isotonic", "platt", "identity"]
    x: list[float] = field(default_factory=list)  # isotonic: raw probabilities
    y: list[float] = field(default_factory=list)  # isotonic: calibrated probabilities
    a: float = 1.0  # platt: p = sigmoid(a·margin + b)
    b: float = 0.0

    def apply(self, margin: np.ndarray | float) -> np.ndarray:
        m = np.asarray(margin, dtype=np.float64)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.a * m + self.b)))
        p = 1.0 / (1.0 + np.exp(-m))
        if self.method == "identity":
            return p
        return np.interp(p, self.x, self.y)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        return cls(**data)


def _fit(method: str, margin: np.ndarray, y: np.ndarray, w: np.ndarray) -> Calibrator:
    if method == "platt":
        lr = LogisticRegression(C=1e6).fit(margin.reshape(-1, 1), y, sample_weight=w)
        return Calibrator("platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))
    p = 1.0 / (1.0 + np.exp(-margin))
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y, sample_weight=w)
    return Calibrator(
        "isotonic", x=[float(v) for v in iso.X_thresholds_], y=[float(v) for v in iso.y_thresholds_]
    )


def fit_calibrator(
    margin: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, seed: int = 0
) -> tuple[Calibrator, dict[str, float]]:
    """Pick isotonic or Platt by 2-fold cross-fitted weighted Brier score, then refit on all rows."""
    w = np.ones_like(margin) if weight is None else weight
    if len(np.unique(y)) < 2:
        return Calibrator("identity"), {}
    folds = np.random.default_rng(seed).permutation(len(y)) % 2
    scores: dict[str, float] = {}
    for method in ("isotonic", "platt"):
        err = 0.0
        for k in (0, 1):
            fit_rows, test_rows = folds != k, folds == k
            if len(np.unique(y[fit_rows])) < 2:
                err = np.inf
                break
            cal = _fit(method, margin[fit_rows], y[fit_rows], w[fit_rows])
            err += float(np.sum(w[test_rows] * (cal.apply(margin[test_rows]) - y[test_rows]) ** 2))
        scores[method] = err / float(w.sum())
    best = min(scores, key=lambda m: scores[m])
    return _fit(best, margin, y, w), scores


def cross_fitted(
    calibrator: Calibrator, margin: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None, seed: int = 0
) -> np.ndarray:
    """Out-of-fold probabilities of the validation rows with the chosen method (2 folds, as chosen).

    The calibrator is fit on the validation rows, so its in-sample calibration error is flattering
    (isotonic regression is exactly calibrated on its own rows); these are the honest probabilities
    to measure Brier score and calibration error on.
    """
    if calibrator.method == "identity":
        return calibrator.apply(margin)
    w = np.ones_like(margin) if weight is None else weight
    folds = np.random.default_rng(seed).permutation(len(y)) % 2
    out = np.empty(len(y), dtype=np.float64)
    for k in (0, 1):
        fit_rows, test_rows = folds != k, folds == k
        if len(np.unique(y[fit_rows])) < 2:
            return calibrator.apply(margin)
        out[test_rows] = _fit(calibrator.method, margin[fit_rows], y[fit_rows], w[fit_rows]).apply(
            margin[test_rows]
        )
    return out
