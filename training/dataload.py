"""Reading an administration's file: map it, validate it, and account for every row.

Every row read ends in exactly one of three places: the validated frame, the failures (with the
field, the source column, the check and the value), or the rows excluded on purpose by a mapping
rule (with the rule's reason). :class:`LoadedFile` keeps the three and the counts add up.

CSV files are read as text (every cell a string, nothing guessed: ``030`` stays ``030`` and the
country code ``NA`` stays Namibia); the mapping converts. Parquet files keep their types.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.frames import FrameValidationError, history_schema, input_schema, validate
from training.mapping import FAILURE_COLUMNS, Mapped, Mapping, apply_mapping

SUFFIXES = (".csv", ".parquet")


class DataFileError(ValueError):
    """The file cannot be read at all (missing, unknown format)."""


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    if path.suffix.lower() not in SUFFIXES:
        raise DataFileError(f"{path}: expected a .csv or .parquet file")
    return path


def read_table(path: Path) -> pd.DataFrame:
    """The whole file; CSV cells as text (empty cells are empty strings, never NaN by guess)."""
    path = check_file(path)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.read_parquet(path)


def file_columns(path: Path) -> list[str]:
    path = check_file(path)
    if path.suffix.lower() == ".csv":
        return list(pd.read_csv(path, dtype=str, nrows=0).columns)
    import pyarrow.parquet as pq

    return list(pq.ParquetFile(path).schema_arrow.names)


def resolve_mapping(domain: str, data: Path, mapping_path: Path | None) -> tuple[Mapping, str | None]:
    """The mapping file's mapping and SHA-256, or the identity mapping of the file's own columns."""
    if mapping_path is None:
        return Mapping.identity(domain, file_columns(data)), None
    mapping, sha = Mapping.load(mapping_path)
    if mapping.domain != domain:
        from training.mapping import MappingError

        raise MappingError(f"{mapping_path}: a {mapping.domain} mapping, not a {domain} one")
    return mapping, sha


def validate_mapped(mapped: Mapped, mapping: Mapping, *, labelled: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """pandera on a converted chunk: (validated frame, all failures of the chunk).

    Failures of the conversion and of pandera are merged; a (row, field) that the conversion
    already reported is not reported again by pandera (a value that is not a number is one problem,
    not also a missing value).
    """
    schema = history_schema(mapping.domain) if labelled else input_schema(mapping.domain)
    failures = mapped.failures
    try:
        frame = validate(mapped.frame, schema)
    except FrameValidationError as exc:
        frame = None
        extra = _from_pandera(exc.failures, mapped, mapping)
        if not failures.empty and not extra.empty:
            known = {(r, f) for r, f in zip(failures["row"], failures["field"], strict=True)}
            missing_fields = {
                f.strip() for f in failures.loc[failures["row"].isna(), "field"] for f in str(f).split(",")
            }

            def fresh(r: pd.Series) -> bool:
                fields = [f.strip() for f in str(r["field"]).split(",")]
                if r["row"] is None or r["row"] != r["row"]:
                    return not any(f in missing_fields for f in fields)
                if any(f in missing_fields for f in fields):
                    return False
                return not any((r["row"], f) in known for f in fields)

            extra = extra[extra.apply(fresh, axis=1)]
        failures = pd.concat([failures, extra], ignore_index=True) if not extra.empty else failures
    if not failures.empty:
        bad_rows = set(failures["row"].dropna().tolist())
        keep = ~mapped.frame.index.isin(list(bad_rows))
        if frame is None:
            # validate the rows that passed so that the caller can still use them (scoring)
            ok = mapped.frame[keep]
            try:
                frame = validate(ok, schema)
            except FrameValidationError:  # dataset-level problems (a missing column): nothing passes
                frame = ok.iloc[0:0]
        else:
            frame = frame[keep]
    return frame, failures.reset_index(drop=True)


def _from_pandera(table: pd.DataFrame, mapped: Mapped, mapping: Mapping) -> pd.DataFrame:
    ids = mapped.frame.get(mapping.id_field)
    rows = []
    for r in table.itertuples(index=False):
        index = None if r.index is None or r.index != r.index else r.index
        fields = [f.strip() for f in str(r.column).split(",")]
        sources = []
        for f in fields:
            spec = mapping.fields.get(f)
            column = spec.column if spec is not None else _outcome_column(mapping, f)
            if column:
                sources.append(column)
        rows.append(
            {
                "row": index,
                "id": None if ids is None or index is None else ids.get(index),
                "field": r.column,
                "source_column": ", ".join(sources) or None,
                "check": r.check,
                "value": r.failure_case,
            }
        )
    return pd.DataFrame(rows, columns=FAILURE_COLUMNS, dtype=object)


def _outcome_column(mapping: Mapping, field: str) -> str | None:
    spec = {
        "inspected": mapping.inspected,
        "selection": mapping.selection,
        "revenue_recovered": mapping.revenue,
    }.get(field, mapping.label if field in ("fraud", "finding") else None)
    return getattr(spec, "column", None) if spec is not None else None


@dataclass
class LoadedFile:
    """A whole file, mapped and validated, with every row accounted for."""

    path: Path
    mapping: Mapping
    frame: pd.DataFrame  # validated rows, indexed by source row number (0 = first data row)
    failures: pd.DataFrame  # FAILURE_COLUMNS; row None = a problem of the whole file
    excluded: pd.DataFrame  # row, id, reason
    rows_read: int
    data_sha256: str
    mapping_sha256: str | None

    @property
    def failed_rows(self) -> int:
        """Rows neither used nor excluded: each has a problem of its own, or the file has one (a
        missing column) that refuses every row."""
        return self.rows_read - len(self.frame) - len(self.excluded)

    @property
    def ok(self) -> bool:
        return self.failures.empty

    def summary(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "rows_valid": len(self.frame),
            "rows_excluded": len(self.excluded),
            "rows_failed": self.failed_rows,
            "problems": len(self.failures),
        }

    def exclusion_counts(self) -> dict[str, int]:
        if self.excluded.empty:
            return {}
        return {str(k): int(v) for k, v in self.excluded["reason"].value_counts().items()}


def load_file(domain: str, data: Path, mapping_path: Path | None = None, *, labelled: bool) -> LoadedFile:
    """Read, map and validate a whole file (training and evaluation read whole files)."""
    data = check_file(data)
    mapping, mapping_sha = resolve_mapping(domain, data, mapping_path)
    raw = read_table(data)
    raw.index = pd.RangeIndex(len(raw))
    mapped = apply_mapping(mapping, raw, with_outcome=labelled)
    frame, failures = validate_mapped(mapped, mapping, labelled=labelled)
    return LoadedFile(
        path=data,
        mapping=mapping,
        frame=frame,
        failures=failures,
        excluded=mapped.excluded,
        rows_read=len(raw),
        data_sha256=file_sha256(data),
        mapping_sha256=mapping_sha,
    )


def iter_raw(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, object | None]]:
    """The file in chunks of about ``chunk_rows`` rows, indexed by source row number.

    Yields (frame, arrow record batch or None): parquet chunks come with their record batch so
    that the columns carried through to the output keep their exact types.
    """
    path = check_file(path)
    if path.suffix.lower() == ".csv":
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows)
        with reader:
            for chunk in reader:
                yield chunk, None
        return
    import pyarrow.parquet as pq

    start = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        frame = batch.to_pandas()
        frame.index = pd.RangeIndex(start, start + len(frame))
        start += len(frame)
        yield frame, batch


def count_rows(path: Path) -> int | None:
    """Rows in the file (parquet metadata; CSV newlines, a progress estimate), or None."""
    path = check_file(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            lines += block.count(b"\n")
    return max(lines - 1, 0)


def outcome_arrays(frame: pd.DataFrame, domain: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(inspected, label as 0/1, revenue or None) of a validated history frame."""
    from features.frames import LABELS

    inspected = frame["inspected"].to_numpy(dtype=bool)
    y = frame[LABELS[domain]].fillna(0).to_numpy(dtype=np.int64)
    revenue = (
        frame["revenue_recovered"].to_numpy(dtype=np.float64, na_value=np.nan)
        if "revenue_recovered" in frame
        else None
    )
    return inspected, y, revenue
