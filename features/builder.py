"""The feature code path shared by training, batch scoring and the service.

A builder is created from a :class:`FeatureState` (fitted on the training history and saved as JSON
with the model). ``transform`` turns columns into the model matrix; training passes the
point-in-time entity history it computed with :meth:`FeatureBuilder.training_history`, serving looks
the history up in the state. Everything else is the same code for one row or a million.

Each feature is put into words by a :class:`Reason`: the fields of the record it reads and a text
function. One decision reads the fields from its record (:meth:`FeatureBuilder.context`); a batch
gathers them column by column (:meth:`FeatureBuilder.batch_context`) and words a feature for all
its rows at once. Both call the same text function on the same values, so a reason reads the same
whichever way it was produced.
"""

from __future__ import annotations

import json
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from features.common import (
    SMALL,
    Columns,
    EntityHistory,
    FeatureDef,
    PreparedColumns,
    TextColumn,
    Vocabulary,
    as_datetime_array,
    digest,
    entity_key,
    history_as_of,
    history_features,
    is_missing,
    join_key,
    lookup_keys,
)

#: 2: cargo lanes and consignments, HS×origin/departure/tax-type histories, tariff-gap and HS heading
#: features; a state of another format belongs to a model built with other features and is refused.
STATE_FORMAT = 2

#: Prefix of a reason field that holds a categorical feature's raw value (``category:office_id``).
CATEGORY = "category:"


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


#: Texts a ``by_fields`` reason remembers (then it starts afresh): bounded memory per model.
REMEMBERED = 2048

#: The direction of a contribution, appended to its text: ``DIRECTION[contribution > 0]``.
DIRECTION = (" (lowers risk)", " (raises risk)")


#: A reason's text with either direction appended: ``pair[contribution > 0]`` is the reason.
Directed = tuple[str, str]


def directed(text: str) -> Directed:
    """``text`` as it reads for a contribution that lowers the risk and for one that raises it: the
    texts a ``by_fields`` reason shares between features and rows, each picked without a copy."""
    return text + DIRECTION[False], text + DIRECTION[True]


@dataclass(frozen=True, eq=False)
class Reason:
    """How one feature is put into words for a record.

    ``fields`` names what the text reads: record fields as given, derived fields (``hs6``), or a
    category's raw value (``category:<feature>``). ``text(value, *fields)`` writes it. A
    ``by_fields`` text does not depend on the feature value and is called as ``text(*fields)``: a
    batch words each distinct combination once (an importer's history reads the same on every one of
    its declarations), and one decision words an entity's three history features once.

    Such a reason is looked up by its *key*: the value of its one field, or the tuple of its fields'
    values (``()`` for none), as ``operator.itemgetter(*fields)`` gives them from a record.
    """

    fields: tuple[str, ...]
    text: Callable[..., str]
    by_fields: bool = False
    _memory: dict[Any, Directed] = field(default_factory=dict, repr=False)

    def directed(self, key: Any) -> Directed:
        """The text of a ``by_fields`` reason for ``key`` with either direction appended (see
        :func:`directed`), remembered for the last few thousand keys: importers, HS codes and offices
        come back request after request (the state is frozen, so their words never change). Only
        str / None values are remembered: values that are equal may read differently (``1`` and
        ``1.0``)."""
        memory = self._memory
        try:
            if (out := memory.get(key)) is not None:  # only str / None keys are ever stored
                return out
        except TypeError:  # an unhashable value (a list): never remembered
            return directed(self._text_of(key))
        out = directed(self._text_of(key))
        parts = key if len(self.fields) != 1 else (key,)
        if all(p is None or type(p) is str for p in parts):
            if len(memory) >= REMEMBERED:
                memory.clear()
            memory[key] = out
        return out

    def directed_of(self, keys: list[Any]) -> list[Directed]:
        """:meth:`directed` of many keys (a batch's, repeated or not) whose values are all str / None
        (checked by the caller): a key seen again is looked up, not worded again (unless more than
        :data:`REMEMBERED` others came in between)."""
        memory, out = self._memory, []
        for key in keys:
            if (said := memory.get(key)) is None:
                said = directed(self._text_of(key))
                if len(memory) >= REMEMBERED:
                    memory.clear()
                memory[key] = said
            out.append(said)
        return out

    def _text_of(self, key: Any) -> str:
        return self.text(key) if len(self.fields) == 1 else self.text(*key)


#: How one record's row words a feature from its value (feature, text, number of fields, getter) and
#: a ``by_fields`` reason for all its features (directed words, getter of its key, features).
_Single = tuple[int, Callable[..., str], int, Callable[[Mapping[str, Any]], Any]]
_Shared = tuple[Callable[[Any], Directed], Callable[[Mapping[str, Any]], Any], tuple[int, ...]]


def _no_fields(row: Mapping[str, Any]) -> tuple[()]:
    """The key of a reason that reads no field."""
    return ()


class RowContext(dict):  # type: ignore[type-arg]
    """The reason fields of one record: its own fields, its derived fields and the raw values of its
    categorical features (``category:<feature>``), each computed once for all its reasons."""

    def __init__(self, builder: FeatureBuilder, row: Mapping[str, Any]) -> None:
        super().__init__(row)
        cols = self.columns = builder.prepare({k: [v] for k, v in row.items()})
        for name in cols.derived:
            self[name] = _as_list(cols[name])[0]
        for name, category in builder._category_names:
            self[category] = builder.category_values(name, cols)[0]


class BatchContext:
    """The reason fields of a batch of records, each a list over the rows, converted on first use.

    Record fields are the values as given (a file's pandas column gives exactly what its
    ``to_dict("records")`` would); derived fields and categories come from the prepared columns.
    """

    def __init__(self, builder: FeatureBuilder, cols: PreparedColumns) -> None:
        self._builder = builder
        self.columns = cols
        self._lists: dict[str, list[Any]] = {}
        self._all_directed: dict[int, list[Directed]] = {}  # reason -> every row's both directions
        self._memo_safe: dict[str, bool] = {}

    def __getitem__(self, name: str) -> list[Any]:
        if (out := self._lists.get(name)) is None:
            if name.startswith(CATEGORY):
                values = self._builder.category_values(name.removeprefix(CATEGORY), self.columns)
                out = _as_list(values)
            else:
                out = _as_list(self.columns[name])
            self._lists[name] = out
        return out

    def gather(self, reason: Reason, rows: list[int] | None) -> list[list[Any]]:
        """The columns ``reason`` reads, on ``rows`` (all when None)."""
        columns = [self[f] for f in reason.fields]
        if rows is None:
            return columns
        return [[col[i] for i in rows] for col in columns]

    def reasons(
        self, reason: Reason, values: list[float], raises: list[bool], rows: list[int] | None
    ) -> list[str]:
        """Reasons (with their direction) of one feature worded by ``reason`` on ``rows`` (all when
        None), whose values are ``values`` and contributions positive where ``raises``.

        A ``by_fields`` reason words each distinct combination of field values once, in both
        directions, and remembers it (:meth:`Reason.directed_of`: one look-up per row; for all rows,
        once for all the features it words, an entity's three); the others word every row.
        """
        if not reason.by_fields:
            texts = map(reason.text, values, *self.gather(reason, rows))
            return [text + DIRECTION[up] for text, up in zip(texts, raises, strict=True)]
        if rows is None and (pairs := self._all_directed.get(id(reason))) is not None:
            return [pair[up] for pair, up in zip(pairs, raises, strict=True)]
        keys = self._keys(reason, rows)
        if keys is None:  # field values that cannot key a memo: word every row
            every = (reason.text(*parts) for parts in zip(*self.gather(reason, rows), strict=True))
            return [text + DIRECTION[up] for text, up in zip(every, raises, strict=True)]
        pairs = reason.directed_of(keys)
        if rows is None:
            self._all_directed[id(reason)] = pairs
        return [pair[up] for pair, up in zip(pairs, raises, strict=True)]

    def _keys(self, reason: Reason, rows: list[int] | None) -> list[Any] | None:
        """The keys of a ``by_fields`` reason on ``rows`` (one field: its values; more: tuples of
        them; see :class:`Reason`), or None when they cannot key a memo."""
        if not all(self._memo_safe_field(f) for f in reason.fields):
            return None
        columns = self.gather(reason, rows)
        if not columns:
            return [()] * (self.columns.n_rows if rows is None else len(rows))
        return columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))

    def _memo_safe_field(self, name: str) -> bool:
        """Whether a field's values can key a memo: str and None only, since values that are equal
        may read differently (``1`` and ``1.0``, ``0.0`` and ``-0.0``)."""
        if (safe := self._memo_safe.get(name)) is None:
            safe = self._memo_safe[name] = set(map(type, self[name])) <= {str, type(None)}
        return safe


def _as_list(values: Any) -> list[Any]:
    """The values of a column as Python objects, the way a record (or ``to_dict``) holds them."""
    if isinstance(values, list):
        return values
    if isinstance(values, pd.Series | np.ndarray):
        return values.tolist()
    return list(values)


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
        self._category_fields = [
            CATEGORY + f.name if f.kind == "categorical" else None for f in self.feature_defs
        ]
        self._category_fields_at = [
            (j, CATEGORY + self.feature_defs[j].name) for j in self.categorical_indices
        ]
        self._category_names = [(name, CATEGORY + name) for name in self.categoricals]
        self._vocabulary_list = [(name, self.vocabularies[name]) for name in self.categoricals]
        self._category_codes = [vocab.code for _, vocab in self._vocabulary_list]
        # A few rows' history look-ups read each row's fields once, as a tuple in this order: each
        # entity picks its parts from it (a tuple of them for a pair, which is joined into the key).
        self._history_fields = tuple(dict.fromkeys(f for h in self.histories for f in h.fields))
        self._history_lookups = [
            (
                operator.itemgetter(*(self._history_fields.index(f) for f in h.fields)),
                len(h.fields) > 1,
                h.counts_of,
            )
            for h in self.histories
        ]
        self._reasons: list[Reason | None] = [None] * len(self.feature_defs)
        self._plan: tuple[list[_Single], list[_Shared]] | None = None
        self._history_reasons: dict[tuple[str, ...], Reason] = {}

    # -- declared by subclasses -------------------------------------------------------------
    @abstractmethod
    def numeric_defs(self) -> list[FeatureDef]: ...

    @abstractmethod
    def numeric_block(self, cols: Columns) -> np.ndarray:
        """(n, len(numeric_defs)) float matrix of the numeric features (``cols`` are prepared)."""

    @abstractmethod
    def category_values(self, name: str, cols: Columns) -> TextColumn:
        """Values (str/None) of categorical feature ``name``: its raw value, before encoding."""

    @abstractmethod
    def category_label(self, name: str) -> str: ...

    @classmethod
    def fit_references(cls, cols: Columns) -> dict[str, Any]:
        return {}

    @classmethod
    def derived_fields(cls, cols: PreparedColumns) -> dict[str, Any]:
        """Derived fields (an HS6 prefix, a transit airport) that entities or categories use."""
        return {}

    @abstractmethod
    def reason_for(self, name: str) -> Reason:
        """How feature ``name`` is put into words (entity histories: :meth:`history_reason`)."""

    # -- shared machinery ---------------------------------------------------------------------
    @classmethod
    def prepare(cls, cols: Columns) -> PreparedColumns:
        """The columns with their derived fields, ready for the feature code (once per batch)."""
        if isinstance(cols, PreparedColumns):
            return cols
        out = PreparedColumns(cols)
        derived = cls.derived_fields(out)
        out.update(derived)
        out.derived = tuple(derived)
        return out

    @classmethod
    def with_derived(cls, cols: Columns) -> dict[str, Any]:
        """The columns with their derived fields added (see :meth:`prepare`)."""
        return cls.prepare(cols)

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
        cols = cls.prepare({c: df[c] for c in df.columns})
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
        cols = self.prepare({c: df[c] for c in df.columns})
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
        """(n, 3·entities) entity counts as of the training cut-off.

        A few rows are looked up key by key (one array for all entities), a big batch with one
        vectorised lookup per entity.
        """
        cols = self.prepare(cols)
        n = cols.n_rows
        if not self.histories:
            return np.empty((n, 0))
        if n >= SMALL:
            return np.hstack([h.lookup(lookup_keys(cols, h.fields)) for h in self.histories])
        return np.array(self._served_counts(cols), dtype=np.float64).reshape(n, 3 * len(self.histories))

    def _served_counts(self, cols: PreparedColumns) -> list[list[float]]:
        """:meth:`serving_history` of a few rows, as one list of counts per row (see ``__init__``)."""
        out = []
        for row in zip(*(cols.text(f) for f in self._history_fields), strict=True):
            counts: list[float] = []
            for pick, joined, counts_of in self._history_lookups:
                key = pick(row)
                counts.extend(counts_of(join_key(key) if joined else key))
            out.append(counts)
        return out

    def category_block(self, cols: Columns) -> np.ndarray:
        """(n, len(categoricals)) category codes, in ``categoricals`` order."""
        cols = self.prepare(cols)
        n = cols.n_rows
        if not self.categoricals:
            return np.empty((n, 0))
        if n < SMALL:  # row by row, one array for all categories (not a list, nor an array, per category)
            values = [self.category_values(name, cols) for name, _ in self._vocabulary_list]
            codes = self._category_codes
            rows = [
                [code(v) for code, v in zip(codes, row, strict=True)] for row in zip(*values, strict=True)
            ]
            return np.array(rows, dtype=np.float64).reshape(n, len(codes))
        encoded = [vocab.encode(self.category_values(name, cols)) for name, vocab in self._vocabulary_list]
        return np.array(encoded, dtype=np.float64).T

    def transform(self, cols: Columns, history: np.ndarray | None = None) -> np.ndarray:
        """Model matrix (n, n_features), float64, in ``feature_names`` order.

        ``history`` is the (n, 3·entities) matrix of (seen, inspected, hits) counts; when omitted the
        counts as of the training cut-off are looked up in the state (serving and batch scoring; a
        few rows' counts go to :func:`history_features` as lists, never made an array of their own).
        """
        cols = self.prepare(cols)
        counts: np.ndarray | list[list[float]]
        if history is not None:
            counts = history
        elif 0 < cols.n_rows < SMALL and self.histories:  # (no rows: the array gives the block its width)
            counts = self._served_counts(cols)
        else:
            counts = self.serving_history(cols)
        blocks = [
            self.numeric_block(cols),
            self.category_block(cols),
            history_features(counts, self.state.prior_rate, self.smoothing),
        ]
        return np.concatenate(blocks, axis=1, dtype=np.float64)

    def entity_label(self, field: str) -> str:
        return field.removesuffix("_id").replace("_", " ")

    # -- reasons ------------------------------------------------------------------------------
    def reason_at(self, index: int) -> Reason:
        """The :class:`Reason` of feature ``index``, built on first use."""
        reason = self._reasons[index]
        if reason is None:
            reason = self._reasons[index] = self.reason_for(self.feature_names[index])
        return reason

    def history_reason(self, name: str) -> Reason:
        """An entity-history feature's reason, from the counts as of the cut-off; the three features
        of one entity share it (and so, in one decision, its text)."""
        h = self._history_of_feature[name]
        if (reason := self._history_reasons.get(h.fields)) is None:
            reason = self._history_reasons[h.fields] = Reason(h.fields, self._history_text(h), by_fields=True)
        return reason

    def _history_text(self, h: EntityHistory) -> Callable[..., str]:
        labels = [self.entity_label(f) for f in h.fields]
        not_given = " × ".join(labels) + ": not given"
        who_is = " × ".join(label.replace("{", "{{").replace("}", "}}") + " {}" for label in labels)
        totals, new = h.totals, [0, 0, 0]

        def text(*parts: Any) -> str:
            for p in parts:
                if type(p) is not str:
                    if p is None:
                        return not_given
                    return spelled(*parts)  # a part that is not text: its str() goes into the key
            return worded(who_is.format(*parts), totals.get("|".join(parts), new))

        def spelled(*parts: Any) -> str:
            # a file's missing value (NaN, pd.NA) is missing, as a request's None is: "not given"
            if any(is_missing(p) for p in parts):
                return not_given
            return worded(who_is.format(*parts), totals.get("|".join(map(str, parts)), new))

        def worded(who: str, counts: list[int]) -> str:
            seen, inspected, hits = counts
            if seen == 0:
                return who + ": never seen before"
            findings = f"{hits} finding" if hits == 1 else f"{hits} findings"
            inspections = f"{inspected} inspection" if inspected == 1 else f"{inspected} inspections"
            return f"{who}: {findings} in {inspections}, {seen} past records"

        return text

    def context(self, row: Mapping[str, Any]) -> RowContext:
        """One record's reason fields, derived fields computed once for all its reasons."""
        return row if isinstance(row, RowContext) else RowContext(self, row)

    def batch_context(self, cols: Columns) -> BatchContext:
        """A batch's reason fields, column by column (``cols``: the columns the batch was scored on)."""
        return BatchContext(self, self.prepare(cols))

    def describe_row(
        self, ctx: RowContext, xs: Sequence[float], features: Sequence[int], raises: Sequence[bool]
    ) -> tuple[list[Any], list[str]]:
        """Display values and reasons of one record whose model row is ``xs`` and whose contributions
        are positive where ``raises``, as lists over all features (indexed like ``feature_names``): the
        values of all, the reasons (text and direction) of ``features``. Each reason is worded once
        (an entity's history once for its three features, in both directions).

        The value shown to a person is the raw category of a categorical feature and the feature
        value of a numeric one; None when the feature is missing (NaN).
        """
        reasons: list[str] = [""] * len(self.feature_defs)
        subset = None if len(features) == len(reasons) else set(features)
        singles, shared = self._reason_plan()
        for j, text, arity, pick in singles:
            if subset is not None and j not in subset:
                continue
            x = xs[j]
            said = text(x) if not arity else text(x, pick(ctx)) if arity == 1 else text(x, *pick(ctx))
            reasons[j] = said + DIRECTION[raises[j]]
        for words, key, indices in shared:
            if subset is not None and subset.isdisjoint(indices):
                continue
            both = words(key(ctx))
            for j in indices:
                reasons[j] = both[raises[j]]
        values = [x if x == x else None for x in xs]  # NaN: missing
        for j, category in self._category_fields_at:
            if values[j] is not None:
                values[j] = ctx[category]
        return values, reasons

    def _reason_plan(self) -> tuple[list[_Single], list[_Shared]]:
        """The reasons as one record's row needs them: value-dependent ones per feature, ``by_fields``
        ones once for all the features they word (an entity's three), each with a getter of their
        fields' values (``operator.itemgetter``: a value for one field, a tuple for more: a
        ``by_fields`` reason's key) and, for the value-dependent ones, their number."""
        if self._plan is None:
            features: dict[Reason, list[int]] = {}
            for j in range(len(self.feature_defs)):
                features.setdefault(self.reason_at(j), []).append(j)
            singles: list[_Single] = []
            shared: list[_Shared] = []
            for r, indices in features.items():
                pick = operator.itemgetter(*r.fields) if r.fields else _no_fields
                if r.by_fields:
                    shared.append((r.directed, pick, tuple(indices)))
                else:
                    singles += [(j, r.text, len(r.fields), pick) for j in indices]
            self._plan = (singles, shared)
        return self._plan

    def feature_reasons(
        self,
        index: int,
        values: list[float],
        raises: list[bool],
        ctx: BatchContext,
        rows: list[int] | None = None,
    ) -> list[str]:
        """Reasons of feature ``index`` for ``rows`` of a batch (all when None): ``values`` are the
        feature's values on those rows, ``raises`` whether its contributions are positive."""
        return ctx.reasons(self.reason_at(index), values, raises, rows)

    def display_values(
        self, index: int, values: list[float], ctx: BatchContext, rows: list[int] | None = None
    ) -> list[Any]:
        """Display values of feature ``index`` for ``rows`` of a batch (see :meth:`describe_row`)."""
        category = self._category_fields[index]
        if category is None:
            return [x if x == x else None for x in values]
        raw = ctx[category]
        if rows is not None:
            raw = [raw[i] for i in rows]
        return [r if x == x else None for r, x in zip(raw, values, strict=True)]


def columns_of_record(record: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Columns of length one from a validated record: the request path's input to ``transform``."""
    return {k: [v] for k, v in record.items()}
