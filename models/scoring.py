"""Scoring with a loaded bundle: features → margin → calibrated score → channel → explanation.

The service (one record at a time) and batch scoring of files (many at a time) both go through
:meth:`Scorer.score_columns`; only the size of the columns differs. That is what makes a record
score the same through the API and through ``borderrisk score``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.builder import columns_of_record
from models.bundle import ModelBundle
from models.explain import ContributionBackend, default_backend

CHANNELS = ("green", "yellow", "red")


@dataclass(frozen=True)
class Thresholds:
    """Channel cut-offs on the raw margin (exact capacity shares), and their calibrated scores."""

    red_share: float
    yellow_share: float
    red_margin: float
    yellow_margin: float
    red_score: float
    yellow_score: float

    def as_dict(self) -> dict[str, float]:
        return {
            "red_share": self.red_share,
            "yellow_share": self.yellow_share,
            "red_score": self.red_score,
            "yellow_score": self.yellow_score,
            "red_margin": self.red_margin,
            "yellow_margin": self.yellow_margin,
        }


def thresholds_for(bundle: ModelBundle, red_share: float, yellow_share: float) -> Thresholds:
    """Thresholds that send ``red_share`` / ``yellow_share`` of the validation flow to red / yellow."""
    grid = np.asarray(bundle.metadata["margin_quantiles"], dtype=np.float64)
    levels = np.linspace(0.0, 1.0, len(grid))
    red = float(np.interp(1.0 - red_share, levels, grid))
    yellow = float(np.interp(1.0 - red_share - yellow_share, levels, grid))
    cal = bundle.calibrator
    return Thresholds(red_share, yellow_share, red, yellow, float(cal.apply(red)), float(cal.apply(yellow)))


@dataclass
class ScoredColumns:
    margin: np.ndarray  # (n,)
    score: np.ndarray  # (n,) calibrated probability
    channel: list[str]
    contributions: np.ndarray | None  # (n, n_features + 1), last column the base value
    X: np.ndarray  # (n, n_features) the model matrix, for readable values and reasons


class Scorer:
    """A bundle ready to serve: its builder, explanation backend and channel thresholds."""

    def __init__(
        self,
        bundle: ModelBundle,
        *,
        red_share: float,
        yellow_share: float,
        version: str = "unregistered",
        backend: ContributionBackend | None = None,
    ) -> None:
        self.bundle = bundle
        self.builder = bundle.builder()
        self.version = version
        self.name = str(bundle.metadata["name"])
        self.sha256 = bundle.sha256 or ""
        self.thresholds = thresholds_for(bundle, red_share, yellow_share)
        self.backend = backend or default_backend(bundle.booster)
        self.labels = [f.label for f in self.builder.feature_defs]

    @property
    def model_info(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    def channel_of(self, margin: np.ndarray) -> list[str]:
        t = self.thresholds
        return ["red" if m >= t.red_margin else "yellow" if m >= t.yellow_margin else "green" for m in margin]

    def score_columns(self, cols: Mapping[str, Any], explain: bool = True) -> ScoredColumns:
        X = self.builder.transform(cols)
        if explain:
            contrib = self.backend(X)
            margin = contrib.sum(axis=1)
        else:
            contrib = None
            margin = self.bundle.booster.predict(X, raw_score=True, num_threads=1 if len(X) < 64 else 0)
        score = self.bundle.calibrator.apply(margin)
        return ScoredColumns(
            margin=margin, score=score, channel=self.channel_of(margin), contributions=contrib, X=X
        )

    def score_record(self, record: Mapping[str, Any]) -> tuple[float, str, dict[str, Any]]:
        """One validated record → (score, channel, explanation)."""
        scored = self.score_columns(columns_of_record(record))
        assert scored.contributions is not None
        explanation = self.explanation(scored.contributions[0], record, x=scored.X[0])
        return float(scored.score[0]), scored.channel[0], explanation

    def explanation(
        self, contrib: np.ndarray, row: Mapping[str, Any], top: int | None = None, x: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Contributions sorted by absolute size, each with its readable value and reason."""
        if x is None:
            x = self.builder.transform(columns_of_record(row))[0]
        order = np.argsort(-np.abs(contrib[:-1]), kind="stable")
        if top is not None:
            order = order[:top]
        names = self.builder.feature_names
        ctx = self.builder.context(row)  # derived fields once, not once per reason
        items = []
        for i in order:
            c = float(contrib[i])
            items.append(
                {
                    "feature": names[i],
                    "label": self.labels[i],
                    "value": self.builder.display_value(int(i), ctx, float(x[i])),
                    "contribution": c,
                    "reason": self.builder.reason(names[i], ctx, float(x[i]), c),
                }
            )
        return {"base_value": float(contrib[-1]), "unit": "log-odds", "contributions": items}

    def top_reasons(
        self, contrib: np.ndarray, row: Mapping[str, Any], x: np.ndarray, k: int = 3
    ) -> list[str]:
        order = np.argsort(-np.abs(contrib[:-1]), kind="stable")[:k]
        names = self.builder.feature_names
        ctx = self.builder.context(row)
        return [self.builder.reason(names[i], ctx, float(x[i]), float(contrib[i])) for i in order]


def records_to_columns(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Columns from several validated records (the batch endpoint)."""
    keys = records[0].keys()
    return {k: [r[k] for r in records] for k in keys}
