"""Scoring a whole file (``borderrisk score``): chunked, so a file larger than memory is fine.

Each chunk is mapped and validated like a training file, then scored with the service's own path
(the feature builder's ``transform``, the model's contributions, :meth:`models.scoring.Scorer.scored`
and :meth:`~models.scoring.Scorer.top_reason_columns`) and written with a pyarrow
``ParquetWriter``: one output row per valid input row, keyed by the declaration / record id, with
the calibrated score, the channel and the top three reasons, and every input column the model does
not use carried through untouched (parquet columns keep their exact type; CSV columns are carried as
the text of the file). A carried column whose name clashes with an output column is renamed
``input_<name>``.

Rows that fail validation are not scored and not dropped silently: they go to ``<out>.errors.csv``
(row, id, field, source column, check, value) and are counted; rows excluded on purpose by the
mapping go to ``<out>.excluded.csv``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.common import PreparedColumns
from features.schemas import ID_FIELDS
from models.scoring import Scorer
from training.dataload import check_file, file_columns, iter_raw, validate_mapped
from training.mapping import EXCLUDED_COLUMNS, FAILURE_COLUMNS, Mapping, MappingError, apply_mapping

OUTPUT_COLUMNS = ("score", "channel", "reason_1", "reason_2", "reason_3")
REASONS = 3


@dataclass
class ScoreFileResult:
    out: Path
    rows_read: int = 0
    rows_scored: int = 0
    rows_failed: int = 0
    rows_excluded: int = 0
    problems: int = 0
    errors_path: Path | None = None
    excluded_path: Path | None = None
    renamed: dict[str, str] = field(default_factory=dict)


class _CsvAppender:
    """A CSV written lazily: created with its header on the first rows, else never created."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns = path, columns
        self.handle: IO[str] | None = None
        self.writer: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        if self.handle is None:
            self.handle = self.path.open("w", newline="", encoding="utf-8")
            self.writer = csv.writer(self.handle)
            self.writer.writerow(self.columns)
        assert self.writer is not None
        for row in frame[self.columns].itertuples(index=False):
            self.writer.writerow(["" if v is None or (isinstance(v, float) and v != v) else v for v in row])

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def carried_columns(mapping: Mapping, columns: list[str]) -> list[str]:
    """Input columns the model does not read: carried through to the output untouched."""
    used = set(mapping.source_columns(with_outcome=False))
    return [c for c in columns if c not in used]


def score_file(
    scorer: Scorer,
    data: Path,
    out: Path,
    mapping: Mapping,
    *,
    chunk_rows: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> ScoreFileResult:
    """Score ``data`` into the parquet file ``out``; see the module docstring."""
    data = check_file(data)
    domain = scorer.bundle.domain
    if mapping.domain != domain:
        raise MappingError(f"a {mapping.domain} mapping cannot feed the {domain} model")
    columns = file_columns(data)
    needed = mapping.source_columns(with_outcome=False)
    absent = [c for c in needed if c not in columns]
    if absent:
        raise MappingError(
            f"{data}: column(s) {', '.join(absent)} missing from the file (the mapping reads them); "
            "nothing was scored"
        )
    id_field = ID_FIELDS[domain]
    carried = carried_columns(mapping, columns)
    renamed = {c: f"input_{c}" for c in carried if c in (id_field, *OUTPUT_COLUMNS)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    result = ScoreFileResult(out=out, renamed=renamed)
    errors = _CsvAppender(out.with_name(out.stem + ".errors.csv"), FAILURE_COLUMNS)
    excluded = _CsvAppender(out.with_name(out.stem + ".excluded.csv"), EXCLUDED_COLUMNS)
    writer: pq.ParquetWriter | None = None

    def write(chunk: _Chunk) -> None:
        nonlocal writer
        table = _scored_table(scorer, chunk, carried, renamed, id_field)
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
        result.rows_scored += len(chunk.frame)
        if progress is not None:
            progress(len(chunk.raw))

    try:
        # One worker computes a chunk's contributions (the numba kernel, which releases the GIL)
        # while this thread reads, validates and transforms the next chunk and words the previous
        # one: the kernel is most of the work, the rest hides behind it. Two chunks are in flight.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="contributions") as explainer:
            pending: _Chunk | None = None
            for raw, batch in iter_raw(data, chunk_rows):
                mapped = apply_mapping(mapping, raw, with_outcome=False, report_missing_columns=False)
                frame, failures = validate_mapped(mapped, mapping, labelled=False)
                errors.write(failures)
                excluded.write(mapped.excluded)
                result.rows_read += len(raw)
                result.rows_excluded += len(mapped.excluded)
                result.problems += len(failures)
                result.rows_failed += int(failures["row"].dropna().nunique()) if not failures.empty else 0
                chunk = _Chunk.start(scorer, frame, raw, batch, explainer)
                if pending is not None:
                    write(pending)
                pending = chunk
            if pending is not None:
                write(pending)
        if writer is None:  # an empty file: still write an empty, typed output
            write(_Chunk(pd.DataFrame(), pd.DataFrame(columns=columns), None))
        assert writer is not None
        writer.close()
        writer = None
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
        errors.close()
        excluded.close()
    if errors.handle is not None:
        result.errors_path = errors.path
    if excluded.handle is not None:
        result.excluded_path = excluded.path
    return result


@dataclass
class _Chunk:
    """A chunk of valid rows on its way: transformed, its contributions being computed."""

    frame: pd.DataFrame  # the validated rows
    raw: pd.DataFrame  # the chunk as read
    batch: Any  # its arrow record batch (parquet), for the carried columns
    cols: PreparedColumns | None = None
    X: np.ndarray | None = None
    contributions: Future[np.ndarray] | None = None

    @classmethod
    def start(
        cls, scorer: Scorer, frame: pd.DataFrame, raw: pd.DataFrame, batch: Any, pool: Executor
    ) -> _Chunk:
        """Transform the rows here and submit their contributions to ``pool``."""
        chunk = cls(frame, raw, batch)
        if len(frame):
            # prepared once: the transform and the reasons read the same converted columns
            chunk.cols = scorer.builder.prepare({c: frame[c] for c in frame.columns})
            chunk.X = scorer.builder.transform(chunk.cols)
            chunk.contributions = pool.submit(scorer.backend, chunk.X)
        return chunk


def _scored_table(
    scorer: Scorer, chunk: _Chunk, carried: list[str], renamed: dict[str, str], id_field: str
) -> pa.Table:
    """The output rows of a chunk: id, score, channel, top reasons and the carried columns."""
    frame, raw, batch = chunk.frame, chunk.raw, chunk.batch
    n = len(frame)
    if n:
        assert chunk.cols is not None and chunk.X is not None and chunk.contributions is not None
        scored = scorer.scored(chunk.X, chunk.contributions.result())
        reasons = scorer.top_reason_columns(scored, chunk.cols, k=REASONS)
        score, channel = scored.score, scored.channel
        ids = frame[id_field].astype("str").tolist()
    else:
        reasons, score, channel, ids = [[] for _ in range(REASONS)], np.empty(0), [], []
    arrays: dict[str, pa.Array] = {
        id_field: pa.array(ids, type=pa.string()),
        "score": pa.array(np.asarray(score, dtype=np.float64), type=pa.float64()),
        "channel": pa.array(list(channel), type=pa.string()),
    }
    for k in range(REASONS):
        arrays[f"reason_{k + 1}"] = pa.array(reasons[k], type=pa.string())
    positions = (
        (frame.index.to_numpy() - (raw.index[0] if len(raw) else 0)).astype(np.int64)
        if n
        else np.empty(0, np.int64)
    )
    for c in carried:
        name = renamed.get(c, c)
        if batch is not None:
            arrays[name] = batch.column(batch.schema.get_field_index(c)).take(pa.array(positions))
        else:
            values = raw[c].iloc[positions] if n else pd.Series([], dtype="str")
            arrays[name] = pa.array(values.astype("str").tolist(), type=pa.string())
    return pa.table(arrays)
