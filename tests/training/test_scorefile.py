"""Scoring a file in chunks: the same scores as the API's path, every row accounted for."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.frames import input_schema, validate
from models.scoring import Scorer
from tests.models import reference_explanation as reference
from training.mapping import Mapping
from training.pipeline import train
from training.scorefile import score_file

from .conftest import small_config

CARRIED = ["inspected", "selection", "fraud", "revenue_recovered", "oracle_p"]


@pytest.fixture(scope="module")
def scorer(small_history) -> Scorer:
    history, _ = small_history
    return Scorer(train(history, small_config()).bundle, red_share=0.05, yellow_share=0.10)


def test_chunked_scores_equal_the_whole_frame_and_extra_columns_are_untouched(
    scorer, small_history, tmp_path
):
    _, later = small_history
    source = tmp_path / "later.parquet"
    later.to_parquet(source, index=False)
    out = tmp_path / "scored.parquet"
    result = score_file(scorer, source, out, Mapping.identity("cargo", list(later.columns)), chunk_rows=700)
    assert result.rows_read == result.rows_scored == len(later) and result.errors_path is None

    scored = pd.read_parquet(out)
    assert list(scored["declaration_id"]) == list(
        later["declaration_id"]
    )  # one row per input row, keyed by id
    whole = validate(later, input_schema("cargo"))
    expected = scorer.score_columns({c: whole[c] for c in whole.columns})
    np.testing.assert_array_equal(scored["score"].to_numpy(), expected.score)  # exactly, not approximately
    assert list(scored["channel"]) == expected.channel
    # every row's three reasons, as the reference words them from the row a file gives
    rows = whole.to_dict("records")
    reasons = scored[["reason_1", "reason_2", "reason_3"]].to_numpy().tolist()
    for i, row in enumerate(rows):
        assert reasons[i] == reference.top_reasons(
            scorer.builder, expected.contributions[i], row, expected.X[i]
        ), i
    # columns the model does not use come through untouched, with their types
    original = pq.read_table(source).select(CARRIED)
    assert pq.read_table(out).select(CARRIED).equals(original)
    assert set(scored.columns) == {
        "declaration_id",
        "score",
        "channel",
        "reason_1",
        "reason_2",
        "reason_3",
        *CARRIED,
    }


def test_rows_that_fail_validation_are_listed_not_dropped(scorer, small_history, tmp_path):
    _, later = small_history
    part = later.head(1500).copy()
    part["net_mass_kg"] = part["net_mass_kg"].astype(object)
    part.loc[10, "net_mass_kg"] = "unknown"
    part.loc[20, "country_of_origin"] = "XX"
    source = tmp_path / "later.csv"
    part.to_csv(source, index=False)
    out = tmp_path / "scored.parquet"
    result = score_file(scorer, source, out, Mapping.identity("cargo", list(part.columns)), chunk_rows=400)
    assert (result.rows_read, result.rows_scored, result.rows_failed) == (1500, 1498, 2)
    errors = pd.read_csv(result.errors_path, dtype=str)
    bad = [part.loc[10, "declaration_id"], part.loc[20, "declaration_id"]]
    assert list(errors["id"]) == bad and list(errors["field"]) == ["net_mass_kg", "country_of_origin"]
    scored = pd.read_parquet(out)
    assert not set(bad) & set(scored["declaration_id"])
    assert len(scored) == 1498
    # a CSV's other columns are carried as the file's text
    kept = part.drop(index=[10, 20])
    assert list(scored["fraud"]) == [("" if pd.isna(v) else str(v)) for v in kept["fraud"]]


def test_the_score_command_exits_non_zero_when_rows_fail(small_registry, tmp_path, monkeypatch):
    from borderrisk.cli import app
    from tests.conftest import TEST_SECRET

    monkeypatch.setenv("BORDERRISK_DATA_DIR", str(small_registry.settings.data_dir))
    monkeypatch.setenv("BORDERRISK_ENV", "test")
    monkeypatch.setenv("BORDERRISK_SESSION_SECRET", TEST_SECRET)
    part = small_registry.later.head(300).copy()
    part.loc[5, "hs_code"] = "12"
    source = tmp_path / "decl.parquet"
    part.to_parquet(source, index=False)
    out = tmp_path / "scored.parquet"
    r = CliRunner().invoke(app, ["score", "cargo", "--data", str(source), "--out", str(out)])
    assert r.exit_code == 1, r.output
    assert "1 row(s) failed validation and were NOT scored" in r.output
    said = " ".join(r.output.split())  # the console wraps long lines
    assert re.search(r"299 of 300 rows scored with cargo-risk v\d+ in \d+\.\d s \([\d,]+ rows/s\)", said), (
        said
    )
    assert len(pd.read_parquet(out)) == 299
    assert (tmp_path / "scored.errors.csv").is_file()


def test_the_output_does_not_depend_on_the_chunks_and_every_row_is_reported(scorer, small_history, tmp_path):
    """Chunks are worded while the next one's contributions are computed: the file is the same in one
    chunk or many, with a chunk whose rows all fail among them, and progress counts every row read."""
    _, later = small_history
    part = later.head(1000).copy()
    part.loc[300:399, "hs_code"] = "12"  # the fourth chunk of 100 has no valid row
    source = tmp_path / "part.parquet"
    part.to_parquet(source, index=False)
    mapping = Mapping.identity("cargo", list(part.columns))
    seen: list[int] = []
    many = score_file(
        scorer, source, tmp_path / "many.parquet", mapping, chunk_rows=100, progress=seen.append
    )
    one = score_file(scorer, source, tmp_path / "one.parquet", mapping, chunk_rows=5000)
    assert (many.rows_read, many.rows_scored, many.rows_failed) == (1000, 900, 100)
    assert sum(seen) == 1000 and len(seen) == 10
    assert pq.read_table(tmp_path / "many.parquet").equals(pq.read_table(tmp_path / "one.parquet"))
    assert one.rows_scored == 900


def test_an_empty_file_gives_an_empty_typed_output(scorer, small_history, tmp_path):
    _, later = small_history
    source = tmp_path / "empty.parquet"
    later.head(0).to_parquet(source, index=False)
    out = tmp_path / "scored.parquet"
    result = score_file(scorer, source, out, Mapping.identity("cargo", list(later.columns)))
    table = pq.read_table(out)
    assert result.rows_read == result.rows_scored == 0 and table.num_rows == 0
    assert table.schema.field("reason_1").type == "string" and table.schema.field("score").type == "double"


def test_a_missing_party_in_a_file_reads_as_in_the_api(scorer, small_history):
    """A file gives a missing seller as NaN, the API as None: every reason of such a row reads the
    same through the file path as through the API ("seller: not given", never "seller nan")."""
    from features.builder import columns_of_record

    _, later = small_history
    rows = later.head(40).copy()
    rows["seller_id"] = pd.Series([None] * len(rows), index=rows.index, dtype="str")  # as a file reads
    frame = validate(rows, input_schema("cargo"))
    cols = {c: frame[c] for c in frame.columns}
    scored = scorer.score_columns(cols)
    n_features = len(scorer.builder.feature_names)
    file_reasons = scorer.top_reason_columns(scored, cols, k=n_features)  # every feature, by size
    for i, record in enumerate(frame.to_dict("records")):
        record = {k: (None if k == "seller_id" else v) for k, v in record.items()}
        one = scorer.score_columns(columns_of_record(record))
        api = [
            c["reason"] for c in scorer.explanation(one.contributions[0], record, x=one.X[0])["contributions"]
        ]
        assert [file_reasons[r][i] for r in range(n_features)] == api, i
        assert any(r.startswith("seller: not given") for r in api)
        assert not any("nan" in r for r in api)
