"""The feature code path shared by training, batch scoring and the service.

A builder is created from a :class:`FeatureState` (fitted on the training history and saved as JSON
with the model). ``transform`` turns columns into the model matrix; training passes the
point-in-time entity history it computed with :meth:`FeatureBuilder.training_history`, serving looks
the history up in the state. Everything else is the same code for one row or a million.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from features.common import (
    Columns,
    EntityHistory,
    FeatureDef,
    Vocabulary,
    as_datetime_array,
    digest,
    entity_key,
    history_as_of,
    lookup_totals,
    smoothed_rate,
)

#: 2: cargo lanes and consignments, HS×origin/departure/tax-type histories, tariff-gap and HS heading
#: features; a state of another format belongs to a model built with other features and is refused.
STATE_FORMAT = 2


@dataclass
class FeatureState:
    """Everything the features need beyond the record itself, frozen at the training cut-off."""

    domain: str
    cutoff: str
    prior_rate: float
    vocabularies: dict[str, list[str]]
    histories: dict[str, dict[str, Any]]
    references: dict[str, Any] = field(default_factory=dict)
    format: int = STATE_FORMAT

    @property
    def vocabulary_version(self) -> str:
        return digest(self.vocabularies)[:16]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureState:
        data = json.loads(text)
        if data.get("format") != STATE_FORMAT:
            raise ValueError(
                f"feature state format {data.get('format')} is not supported (want {STATE_FORMAT})"
            )
        return cls(**data)


class FeatureBuilder(ABC):
    """Base of the per-domain builders; subclasses declare their features and reasons."""

    domain: ClassVar[str]
    id_field: ClassVar[str]
    time_field: ClassVar[str]
    label_field: ClassVar[str]
    #: entity (or pair) -> whose history of inspections and findings becomes features
    entities: ClassVar[tuple[tuple[str, ...], ...]]
    #: short feature-name prefixes for long entity keys
    entity_aliases: ClassVar[dict[tuple[str, ...], str]] = {}
    #: derived field -> the declaration fields it is computed from (for honest ``FeatureDef.sources``)
    derived_sources: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: categorical feature -> source fields
    categoricals: ClassVar[dict[str, tuple[str, ...]]]
    #: shrinkage of entity hit rates toward the overall rate, in pseudo-inspections
    smoothing: ClassVar[float] = 20.0
    #: categories seen fewer times than this in training share the explicit OTHER code
    min_category_count: ClassVar[int] = 20

    def __init__(self, state: FeatureState) -> None:
        if state.domain != self.domain:
            raise ValueError(f"feature state is for {state.domain}, not {self.domain}")
        self.state = state
        self.vocabularies = {k: Vocabulary(v) for k, v in state.vocabularies.items()}
        # The class's declared order, never the JSON's key order: feature columns must not move.
        missing = [f for f in ("|".join(e) for e in self.entities) if f not in state.histories]
        if missing:
            raise ValueError(f"feature state has no history for {', '.join(missing)}")
        self.histories = [
            EntityHistory(
                fields, state.histories["|".join(fields)]["totals"], self.entity_aliases.get(fields, "")
            )
            for fields in self.entities
        ]
        self.feature_defs: list[FeatureDef] = [
            *self.numeric_defs(),
            *(
                FeatureDef(name, self.category_label(name), "categorical", src)
                for name, src in self.categoricals.items()
            ),
            *self.history_defs(),
        ]
        self.feature_names = [f.name for f in self.feature_defs]
        self._history_of_feature = {
            f"{h.name}_{suffix}": h for h in self.histories for suffix in ("seen", "inspected", "hit_rate")
        }
        self.categorical_indices = [i for i, f in enumerate(self.feature_defs) if f.kind == "categorical"]

    # -- declared by subclasses -------------------------------------------------------------
    @abstractmethod
    def numeric_defs(self) -> list[FeatureDef]: ...

    @abstractmethod
    def numeric_block(self, cols: Columns) -> np.ndarray:
        """(n, len(numeric_defs)) float matrix of the numeric features."""

    @abstractmethod
    def category_values(self, name: str, cols: Columns) -> np.ndarray:
        """Object array of str/None: the raw value of categorical feature ``name``."""

    @abstractmethod
    def category_label(self, name: str) -> str: ...

    @classmethod
    def fit_references(cls, cols: Columns) -> dict[str, Any]:
        return {}

    @classmethod
    def with_derived(cls, cols: Columns) -> dict[str, Any]:
        """Add derived fields (an HS6 prefix, a transit airport) that entities or categories use."""
        return dict(cols)

    @abstractmethod
    def reason(self, name: str, row: Mapping[str, Any], value: float, contribution: float) -> str:
        """Plain-language reason for one feature's contribution to one decision."""

    # -- shared machinery ---------------------------------------------------------------------
    @classmethod
    def sources_of(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        """The declaration fields behind ``fields``: derived fields are replaced by their sources."""
        out: list[str] = []
        for f in fields:
            for s in cls.derived_sources.get(f, (f,)):
                if s not in out:
                    out.append(s)
        return tuple(out)

    def history_defs(self) -> list[FeatureDef]:
        defs = []
        for h in self.histories:
            who = " × ".join(self.entity_label(f) for f in h.fields)
            src = self.sources_of(h.fields)
            defs += [
                FeatureDef(f"{h.name}_seen", f"{who}: past declarations", "numeric", src),
                FeatureDef(f"{h.name}_inspected", f"{who}: past inspections", "numeric", src),
                FeatureDef(f"{h.name}_hit_rate", f"{who}: past hit rate (smoothed)", "numeric", src),
            ]
        return defs

    @classmethod
    def fit(cls, df: pd.DataFrame) -> FeatureState:
        """Fit vocabularies, references and entity histories on a training history frame."""
        cols = cls.with_derived({c: df[c] for c in df.columns})
        inspected = df["inspected"].to_numpy(dtype=bool)
        hits = df[cls.label_field].fillna(0).to_numpy(dtype=np.int64).astype(bool) & inspected
        prior = float(hits.sum() / max(inspected.sum(), 1))
        day = cls._day(cols)
        proto = cls.__new__(cls)  # category_values needs no state
        vocabularies = {
            name: Vocabulary.fit(proto.category_values(name, cols), cls.min_category_count).categories
            for name in cls.categoricals
        }
        histories = {}
        for fields in cls.entities:
            _, totals = history_as_of(entity_key(cols, fields), day, inspected, hits)
            histories["|".join(fields)] = {"fields": list(fields), "totals": totals}
        cutoff = str(as_datetime_array(df[cls.time_field]).max())
        return FeatureState(
            domain=cls.domain,
            cutoff=cutoff,
            prior_rate=prior,
            vocabularies=vocabularies,
            histories=histories,
            references=cls.fit_references(cols),
        )

    @classmethod
    def _day(cls, cols: Columns) -> np.ndarray:
        return as_datetime_array(cols[cls.time_field]).astype("datetime64[D]").astype(np.int64)

    def training_history(self, df: pd.DataFrame, frozen_from: Any = None) -> np.ndarray:
        """Point-in-time entity counts for training rows: only strictly earlier days count.

        ``frozen_from`` (an instant; it is taken at the start of its day) freezes the counts there:
        rows on or after that day see the totals of the days before it and nothing later, as the
        released model will. Training passes the start of its validation period.
        """
        cols = self.with_derived({c: df[c] for c in df.columns})
        inspected = df["inspected"].to_numpy(dtype=bool)
        hits = df[self.label_field].fillna(0).to_numpy(dtype=np.int64).astype(bool) & inspected
        day = self._day(cols)
        freeze = None
        if frozen_from is not None:
            freeze = int(np.datetime64(pd.Timestamp(frozen_from).to_datetime64(), "D").astype(np.int64))
        blocks = [
            history_as_of(entity_key(cols, h.fields), day, inspected, hits, freeze_from=freeze)[0]
            for h in self.histories
        ]
        return np.hstack(blocks) if blocks else np.empty((len(df), 0))

    def serving_history(self, cols: Columns) -> np.ndarray:
        """Entity counts as of the training cut-off (``cols`` already carry the derived fields)."""
        blocks = [lookup_totals(h, entity_key(cols, h.fields)) for h in self.histories]
        n = len(next(iter(cols.values())))
        return np.hstack(blocks) if blocks else np.empty((n, 0))

    def transform(self, cols: Columns, history: np.ndarray | None = None) -> np.ndarray:
        """Model matrix (n, n_features), float64, in ``feature_names`` order.

        ``history`` is the (n, 3·entities) matrix of (seen, inspected, hits) counts; when omitted the
        counts as of the training cut-off are looked up in the state (serving and batch scoring).
        """
        cols = self.with_derived(cols)
        numeric = self.numeric_block(cols)
        cats = [
            self.vocabularies[name].encode(self.category_values(name, cols)) for name in self.categoricals
        ]
        counts = self.serving_history(cols) if history is None else history
        hist = []
        for j in range(len(self.histories)):
            c = counts[:, 3 * j : 3 * j + 3]
            hist += [c[:, 0], c[:, 1], smoothed_rate(c, self.state.prior_rate, self.smoothing)]
        return np.column_stack([numeric, *cats, *hist]).astype(np.float64, copy=False)

    def entity_label(self, field: str) -> str:
        return field.removesuffix("_id").replace("_", " ")

    def context(self, row: Mapping[str, Any]) -> RowContext:
        """A record with its derived fields computed once, for the many reasons of one explanation."""
        return RowContext(row, self.with_derived({k: [v] for k, v in row.items()}))

    def derived_columns(self, row: Mapping[str, Any]) -> Mapping[str, Any]:
        if isinstance(row, RowContext):
            return row.columns
        return self.with_derived({k: [v] for k, v in row.items()})

    def describe_history(self, name: str, row: Mapping[str, Any]) -> str:
        """Reason text for an entity-history feature, from the counts as of the cut-off."""
        h = self._history_of_feature[name]
        derived = self.derived_columns(row)
        parts = [derived[f][0] for f in h.fields]
        if any(p is None for p in parts):
            return " × ".join(self.entity_label(f) for f in h.fields) + ": not given"
        who = " × ".join(f"{self.entity_label(f)} {p}" for f, p in zip(h.fields, parts, strict=True))
        seen, inspected, hits = h.totals.get("|".join(str(p) for p in parts), [0, 0, 0])
        if seen == 0:
            return f"{who}: never seen before"
        return f"{who}: {_count(hits, 'finding')} in {_count(inspected, 'inspection')}, {seen} past records"

    def display_value(self, index: int, row: Mapping[str, Any], value: float) -> Any:
        """The value shown to a person: the raw category, or the numeric feature value."""
        feature = self.feature_defs[index]
        if feature.kind == "categorical":
            decoded = self.vocabularies[feature.name].decode(value)
            raw = self.category_values(feature.name, self.derived_columns(row))[0]
            return raw if decoded is not None else None
        return None if np.isnan(value) else float(value)


class RowContext(dict):
    """A record (its fields as a dict) that also carries its derived one-row columns."""

    def __init__(self, row: Mapping[str, Any], columns: Mapping[str, Any]) -> None:
        super().__init__(row)
        self.columns = columns


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def columns_of_record(record: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Columns of length one from a validated record: the request path's input to ``transform``."""
    return {k: [v] for k, v in record.items()}
