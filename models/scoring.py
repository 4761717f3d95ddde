"""Scoring with a loaded bundle: features → margin → calibrated score → channel → explanation.

The service (one record at a time) and batch scoring of files (many at a time) both go through
:meth:`Scorer.score_columns` (a file takes its two halves apart, the builder's ``transform`` and
:meth:`Scorer.scored`, to compute one chunk's contributions while it reads the next); only the size of
the columns differs. That is what makes a record score the same through the API and through
``borderrisk score``.

Explanations are worded the same way for one record (:meth:`Scorer.explanation`), a batch
(:meth:`Scorer.explanations`) and a file's top reasons (:meth:`Scorer.top_reason_columns`): the same
:class:`features.builder.Reason` texts on the same field values, read from a record or gathered
column by column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from features.builder import BatchContext, columns_of_record
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
        # Each feature's explanation item with its name and label, and every key in its order: an
        # item is a copy with its value, contribution and reason set (see _items).
        self._templates = [
            {"feature": name, "label": label, "value": None, "contribution": 0.0, "reason": ""}
            for name, label in zip(self.builder.feature_names, self.labels, strict=True)
        ]

    @property
    def model_info(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}

    def channel_of(self, margin: np.ndarray) -> list[str]:
        t = self.thresholds
        return ["red" if m >= t.red_margin else "yellow" if m >= t.yellow_margin else "green" for m in margin]

    def score_columns(
        self, cols: Mapping[str, Any], explain: bool = True, row_by_row: bool = False
    ) -> ScoredColumns:
        """``row_by_row``: explain each row as if it came alone. A batch's TreeSHAP sums the same
        terms in another order (equal within 1e-14, not bit for bit), and a record the service
        decides together with others must get the answer it would have got alone."""
        X = self.builder.transform(cols)
        if not explain:
            return self.scored(X, None)
        if row_by_row and len(X) > 1:
            return self.scored(X, np.vstack([self.backend(X[i : i + 1]) for i in range(len(X))]))
        return self.scored(X, self.backend(X))

    def scored(self, X: np.ndarray, contrib: np.ndarray | None) -> ScoredColumns:
        """Margins, calibrated scores and channels of a model matrix, from its contributions (which
        add up to the margin) or, without them, from the booster."""
        if contrib is not None:
            margin = contrib.sum(axis=1)
        else:
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
        features = order.tolist()
        c = contrib.tolist()
        raises = (contrib[:-1] > 0).tolist()
        values, reasons = self.builder.describe_row(self.builder.context(row), x.tolist(), features, raises)
        return {
            "base_value": c[-1],
            "unit": "log-odds",
            "contributions": self._items(features, values, c, reasons),
        }

    def _items(
        self,
        features: list[int],
        values: Sequence[Any],
        contributions: list[float],
        reasons: Sequence[str],
        at: Iterable[int] | None = None,
    ) -> list[dict[str, Any]]:
        """The explanation items of ``features``, in that order. ``contributions`` are indexed by
        feature; ``values`` and ``reasons`` by feature too, or by the positions ``at`` (a compact
        explanation's ranks, ``range(len(features))``).

        An item is a copy of the feature's template (its name, its label, the keys in their order)
        with the other three set: a five-entry copy and three stores cost less than building a
        five-key dict (≈ 25 % less), and a batch builds tens of thousands of them."""
        templates, out = self._templates, []
        for j, k in zip(features, features if at is None else at, strict=True):
            item = templates[j].copy()
            item["value"] = values[k]
            item["contribution"] = contributions[j]
            item["reason"] = reasons[k]
            out.append(item)
        return out

    def explanations(
        self, scored: ScoredColumns, records: Sequence[Mapping[str, Any]], worded: int | None = None
    ) -> list[dict[str, Any]]:
        """``[self.explanation(scored.contributions[i], records[i], x=scored.X[i]) for i …]``, for a
        batch of records scored together (the batch endpoint).

        With ``worded``, a compact explanation: only the ``worded`` largest contributions carry their
        label, value and reason (the same items, in the same order, as the full explanation's first
        ``worded``); every other feature's exact contribution follows, in the same order, under
        ``remaining`` (names and numbers only). Nothing is left out of the numbers, and a batch of
        thousands of rows is not made to word fifty features a row that nobody reads.

        The batch is sorted in one call, and each feature is worded for all records at once from
        columns gathered once (an entity's history text once per entity, a category's once per value).
        """
        if not records:
            return []
        assert scored.contributions is not None
        contrib = scored.contributions
        order = np.argsort(-np.abs(contrib[:, :-1]), axis=1, kind="stable")
        ctx = self.builder.batch_context(records_to_columns(records))
        if worded is not None:
            return self._compact_explanations(scored, ctx, order, worded)
        builder = self.builder
        by_feature = scored.X.T.tolist()
        raises = (contrib[:, :-1] > 0).T.tolist()
        values = zip(*(builder.display_values(j, xs, ctx) for j, xs in enumerate(by_feature)), strict=True)
        reasons = zip(
            *(
                builder.feature_reasons(j, xs, ups, ctx)
                for j, (xs, ups) in enumerate(zip(by_feature, raises, strict=True))
            ),
            strict=True,
        )
        out = []
        for c, features, v, r in zip(contrib.tolist(), order.tolist(), values, reasons, strict=True):
            out.append(
                {"base_value": c[-1], "unit": "log-odds", "contributions": self._items(features, v, c, r)}
            )
        return out

    def _compact_explanations(
        self, scored: ScoredColumns, ctx: BatchContext, order: np.ndarray, worded: int
    ) -> list[dict[str, Any]]:
        assert scored.contributions is not None
        k = max(0, min(worded, order.shape[1]))
        contrib = scored.contributions
        top, rest = order[:, :k], order[:, k:]
        values, reasons = self._word_ranks(scored, ctx, top, with_values=True)
        ranks = range(k)
        # the names and contributions of every row's other features, gathered for all rows at once
        # (the same str and float objects as ``feature_names[j]`` and ``contributions.tolist()``)
        rest_names = np.array(self.builder.feature_names, dtype=object)[rest].tolist()
        rest_contributions = np.take_along_axis(contrib[:, :-1], rest, axis=1).tolist()
        out = []
        for c, features, v, r, names, numbers in zip(
            contrib.tolist(),
            top.tolist(),
            values.tolist(),
            reasons.tolist(),
            rest_names,
            rest_contributions,
            strict=True,
        ):
            out.append(
                {
                    "base_value": c[-1],
                    "unit": "log-odds",
                    "contributions": self._items(features, v, c, r, at=ranks),
                    "remaining": {"features": names, "contributions": numbers},
                }
            )
        return out

    def _word_ranks(
        self, scored: ScoredColumns, ctx: BatchContext, top: np.ndarray, *, with_values: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """For ``top`` (row × rank → feature), the display value and the reason at every rank of every
        row, as (rows, ranks) object arrays (values: without ``with_values``, all None).

        The rows are grouped by feature, so each feature is worded for all the rows whose ``top`` it is
        in, from columns gathered once; its words are written to their (row, rank) cells in one
        array assignment."""
        assert scored.contributions is not None
        contrib = scored.contributions[:, :-1]
        n, k = top.shape
        values = np.full(n * k, None, dtype=object)
        reasons = np.full(n * k, None, dtype=object)
        if not top.size:
            return values.reshape(n, k), reasons.reshape(n, k)
        flat = top.ravel()
        by_feature = np.argsort(flat, kind="stable")
        bounds = np.searchsorted(flat[by_feature], np.arange(contrib.shape[1] + 1)).tolist()
        builder = self.builder
        for j in range(contrib.shape[1]):
            positions = by_feature[bounds[j] : bounds[j + 1]]  # row * k + rank, rows in order
            if not len(positions):
                continue
            rows = positions // k
            row_list = rows.tolist()
            xs, raises = scored.X[rows, j].tolist(), (contrib[rows, j] > 0).tolist()
            reasons[positions] = _objects(builder.feature_reasons(j, xs, raises, ctx, row_list))
            if with_values:
                values[positions] = _objects(builder.display_values(j, xs, ctx, row_list))
        return values.reshape(n, k), reasons.reshape(n, k)

    def top_reasons(
        self, contrib: np.ndarray, row: Mapping[str, Any], x: np.ndarray, k: int = 3
    ) -> list[str]:
        """The reasons of the ``k`` largest contributions of one record, largest first."""
        features = np.argsort(-np.abs(contrib[:-1]), kind="stable")[:k].tolist()
        raises = (contrib[:-1] > 0).tolist()
        _, reasons = self.builder.describe_row(self.builder.context(row), x.tolist(), features, raises)
        return [reasons[j] for j in features]

    def top_reason_columns(
        self, scored: ScoredColumns, cols: Mapping[str, Any], k: int = 3
    ) -> list[list[str | None]]:
        """Column ``r`` holds, for every row, the reason of its ``r``-th largest contribution (None
        when the model has fewer than ``r + 1`` features): ``top_reasons`` of each row, for a batch.

        ``cols`` are the columns the batch was scored on (prepared columns are reused).
        """
        assert scored.contributions is not None
        contrib = scored.contributions[:, :-1]
        n = len(contrib)
        top = top_k_order(contrib, k)
        columns: list[list[str | None]] = [[None] * n for _ in range(k)]
        if not top.size:
            return columns
        _, reasons = self._word_ranks(scored, self.builder.batch_context(cols), top, with_values=False)
        worded: list[list[str | None]] = reasons.T.tolist()
        return worded + columns[len(worded) :]


def top_k_order(contrib: np.ndarray, k: int) -> np.ndarray:
    """``np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]``, without sorting every row.

    A row whose ``k`` largest absolute values are unambiguous (nothing else ties the ``k``-th, no
    NaN) sorts just those ``k``, which are already in index order, so the stable tie-break holds;
    the other rows take the full stable sort.
    """
    size = np.abs(contrib)
    n, width = size.shape
    k = min(k, width)
    if k <= 0:
        return np.empty((n, 0), dtype=np.intp)
    if k == width or n < 64:
        return np.argsort(-size, axis=1, kind="stable")[:, :k]
    kth = np.partition(size, width - k, axis=1)[:, width - k]
    candidate = size >= kth[:, None]
    clear = (candidate.sum(axis=1) == k) & ~np.isnan(size).any(axis=1)
    out = np.empty((n, k), dtype=np.intp)
    rows = np.flatnonzero(clear)
    picked = np.nonzero(candidate[rows])[1].reshape(-1, k)
    ranked = np.argsort(-size[rows[:, None], picked], axis=1, kind="stable")
    out[rows] = np.take_along_axis(picked, ranked, axis=1)
    rest = np.flatnonzero(~clear)
    if len(rest):
        out[rest] = np.argsort(-size[rest], axis=1, kind="stable")[:, :k]
    return out


def _objects(items: list[Any]) -> np.ndarray:
    """A list as a 1-D object array, item by item (``np.array`` would unpack items that are sequences)."""
    return np.fromiter(items, dtype=object, count=len(items))


def records_to_columns(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Columns from several validated records (the batch endpoint)."""
    keys = records[0].keys()
    return {k: [r[k] for r in records] for k in keys}
