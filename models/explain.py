"""Explanation backends: per-feature SHAP contributions to the raw margin.

A backend maps a model matrix (n, F) to (n, F + 1) contributions whose last column is the base
value, the layout of LightGBM's ``pred_contrib``. LightGBM's own TreeSHAP is the reference; a faster
exact implementation can replace it behind the same signature.
"""

from __future__ import annotations

from collections.abc import Callable

import lightgbm as lgb
import numpy as np

ContributionBackend = Callable[[np.ndarray], np.ndarray]


def pred_contrib_backend(booster: lgb.Booster) -> ContributionBackend:
    """LightGBM ``pred_contrib``, single-threaded for small inputs.

    A model loaded from text keeps the thread count it was trained with; on a request path with
    several workers that oversubscribes the cores, so small calls pin ``num_threads=1``.
    """

    def contributions(X: np.ndarray) -> np.ndarray:
        threads = 1 if len(X) < 64 else 0
        return np.asarray(booster.predict(X, pred_contrib=True, num_threads=threads), dtype=np.float64)

    return contributions
