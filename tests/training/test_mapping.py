"""Mapping files and validation: an administration's file is converted, or refused with every problem."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from training.dataload import load_file
from training.mapping import Mapping, MappingError

REPO = Path(__file__).resolve().parents[2]
KCS_MAPPING = REPO / "training" / "mappings" / "kcs.yaml"

#: An administration's own export: other names, mass in tonnes, value in thousands, day-first dates,
#: HS codes that lost their leading zero, a label spelled Y/N, a selection column.
MAPPING = {
    "domain": "cargo",
    "fields": {
        "declaration_id": {"column": "DECL_NO"},
        "declared_at": {"column": "LODGED", "date_format": "%d/%m/%Y %H:%M"},
        "office_id": {"column": "OFFICE", "pad": 3},
        "process_type": {"constant": "B"},
        "import_type": {"constant": "11"},
        "import_use": {"constant": "21"},
        "payment_type": {"constant": "11"},
        "transport_mode": {"column": "MODE"},
        "declarant_id": {"column": "BROKER"},
        "importer_id": {"column": "IMPORTER"},
        "seller_id": {"column": "SELLER", "missing": ["-"]},
        "courier_id": {"constant": None},
        "hs_code": {"column": "HS", "pad": 6},
        "country_of_departure": {"column": "FROM", "upper": True},
        "country_of_origin": {"column": "ORIGIN", "upper": True},
        "origin_indicator": {"constant": "Y"},
        "tax_type": {"column": "TAX_TYPE"},
        "tax_rate": {"column": "RATE", "decimal": ","},
        "net_mass_kg": {"column": "MASS_T", "multiply": 1000},
        "declared_value": {"column": "VALUE_K", "multiply": 1000},
    },
    "label": {"column": "RESULT", "positive": ["Y"], "negative": ["N"]},
    "selection": {"column": "HOW", "random": ["RND"], "targeted": ["RISK", "OFFICER"]},
    "exclude": [
        {"field": "transport_mode", "eq": "99", "reason": "postal consignments are screened elsewhere"}
    ],
}

GOOD = {
    "DECL_NO": "D1",
    "LODGED": "03/02/2024 09:30",
    "OFFICE": "30",
    "MODE": "10",
    "BROKER": "BR1",
    "IMPORTER": "IM1",
    "SELLER": "SE1",
    "HS": "10121",
    "FROM": "cn",
    "ORIGIN": "cn",
    "TAX_TYPE": "A",
    "RATE": "8,5",
    "MASS_T": "1.25",
    "VALUE_K": "12.5",
    "RESULT": "N",
    "HOW": "RISK",
    "NOTE": "kept",
}


def _write(tmp_path: Path, rows: list[dict], mapping: dict = MAPPING) -> tuple[Path, Path]:
    data = tmp_path / "export.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    spec = tmp_path / "mapping.yaml"
    spec.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return data, spec


def test_a_mapped_row_is_converted_to_the_schema(tmp_path):
    rows = [
        GOOD,
        GOOD | {"DECL_NO": "D2", "SELLER": "-", "RESULT": "Y", "HOW": "RND", "LODGED": "04/02/2024 10:00"},
    ]
    loaded = load_file("cargo", *_write(tmp_path, rows), labelled=True)
    assert loaded.ok, loaded.failures
    row = loaded.frame.loc[0]
    assert row["hs_code"] == "010121" and row["office_id"] == "030"
    assert row["country_of_origin"] == "CN"
    assert row["declared_at"] == pd.Timestamp("2024-02-03 09:30")
    assert row["net_mass_kg"] == pytest.approx(1250.0) and row["declared_value"] == pytest.approx(12500.0)
    assert row["tax_rate"] == pytest.approx(8.5)
    assert pd.isna(loaded.frame.loc[1, "seller_id"]) and pd.isna(row["courier_id"])
    assert list(loaded.frame["fraud"]) == [0, 1]
    assert list(loaded.frame["selection"]) == ["targeted", "random"]
    assert loaded.frame["inspected"].all()


def test_a_bad_file_is_refused_with_every_problem_and_nothing_dropped_silently(tmp_path):
    rows = [
        GOOD,
        GOOD | {"DECL_NO": "D2", "MASS_T": "heavy"},  # wrong type
        GOOD | {"DECL_NO": "D3", "MASS_T": "-2"},  # impossible: negative mass
        GOOD | {"DECL_NO": "D4", "LODGED": "01/01/2099 00:00"},  # future date
        GOOD | {"DECL_NO": "D5", "RESULT": "maybe"},  # unknown label value
        GOOD | {"DECL_NO": "D6", "LODGED": "2024-02-03"},  # not in the stated format
        GOOD | {"DECL_NO": "D7", "ORIGIN": "XX"},  # not a country
        GOOD | {"DECL_NO": "D8", "MODE": "99"},  # excluded on purpose
        GOOD | {"DECL_NO": "D9", "HOW": "LOTTERY"},  # unknown selection
    ]
    frame = pd.DataFrame(rows).drop(columns=["TAX_TYPE"])  # a missing column
    data = tmp_path / "export.csv"
    frame.to_csv(data, index=False)
    spec = tmp_path / "mapping.yaml"
    spec.write_text(yaml.safe_dump(MAPPING))
    loaded = load_file("cargo", data, spec, labelled=True)
    assert not loaded.ok
    f = loaded.failures
    problems = {(r.id, r.field): str(r.check) for r in f.itertuples() if r.row is not None}
    assert problems[("D2", "net_mass_kg")] == "not a number"
    assert "greater_than(0)" in problems[("D3", "net_mass_kg")]
    assert "future" in problems[("D4", "declared_at")]
    assert "label value not accepted" in problems[("D5", "fraud")]
    assert "not a date/time in format" in problems[("D6", "declared_at")]
    assert ("D7", "country_of_origin") in problems
    assert "selection value not accepted" in problems[("D9", "selection")]
    missing = f[f["row"].isna()]
    assert list(missing["source_column"]) == ["TAX_TYPE"] and "missing" in missing["check"].iloc[0]
    # one problem, one report: the failed conversion of D2 is not also reported as a missing value
    assert len(f[(f["id"] == "D2")]) == 1
    # every row is accounted for: used, excluded with its reason, or failed
    assert list(loaded.excluded["id"]) == ["D8"]
    assert loaded.excluded["reason"].iloc[0] == "postal consignments are screened elsewhere"
    assert len(set(f["row"].dropna())) == 7  # rows with problems of their own
    # D1 has none, but the file lacks a column that every row needs: no row is used
    assert len(loaded.frame) == 0 and loaded.failed_rows == 8
    assert loaded.rows_read == len(loaded.frame) + len(loaded.excluded) + loaded.failed_rows


def test_the_train_command_refuses_the_file_and_writes_every_problem(tmp_path, monkeypatch):
    from borderrisk.cli import app
    from tests.conftest import TEST_SECRET

    monkeypatch.setenv("BORDERRISK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BORDERRISK_ENV", "test")
    monkeypatch.setenv("BORDERRISK_SESSION_SECRET", TEST_SECRET)
    rows = [GOOD | {"DECL_NO": f"D{i}"} for i in range(30)]
    rows[4] |= {"MASS_T": "-1"}
    rows[9] |= {"RESULT": "perhaps"}
    data, spec = _write(tmp_path, rows)
    result = CliRunner().invoke(app, ["train", "cargo", "--data", str(data), "--mapping", str(spec)])
    assert result.exit_code == 2, result.output
    assert "2 row(s) failed validation" in result.output and "nothing was trained" in result.output
    (errors,) = (tmp_path / "data" / "runs").glob("*/validation_errors.csv")
    table = pd.read_csv(errors, dtype=str)
    assert set(zip(table["id"], table["field"], strict=True)) == {("D4", "net_mass_kg"), ("D9", "fraud")}
    assert (errors.parent / "report.html").read_text().count("D9") >= 1


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"colour": "blue"}, "colour"),  # unknown top-level key (extra="forbid")
        ({"fields": {**MAPPING["fields"], "hs_cod": {"column": "HS"}}}, "unknown field(s) hs_cod"),
        (
            {"fields": {k: v for k, v in MAPPING["fields"].items() if k != "importer_id"}},
            "importer_id not mapped",
        ),
        ({"fields": {**MAPPING["fields"], "office_id": {"column": "OFFICE", "multiply": 2}}}, "multiply"),
        ({"fields": {**MAPPING["fields"], "tax_type": {"column": "T", "constant": "A"}}}, "exactly one of"),
        ({"label": {"column": "RESULT", "positive": ["Y"], "negative": ["Y"]}}, "both positive and negative"),
        (
            {"exclude": [{"field": "net_mass_kg", "lt": 1, "gt": 9, "reason": "two conditions"}]},
            "exactly one",
        ),
    ],
)
def test_the_mapping_file_itself_is_validated(tmp_path, change, fragment):
    spec = tmp_path / "mapping.yaml"
    spec.write_text(yaml.safe_dump(MAPPING | change))
    with pytest.raises(MappingError, match="invalid mapping") as info:
        Mapping.load(spec)
    assert fragment in str(info.value)


def test_mapping_is_frozen():
    mapping, _ = Mapping.load(KCS_MAPPING)
    with pytest.raises(Exception, match="frozen"):
        mapping.domain = "passenger"  # type: ignore[misc]


def _kcs_dir() -> Path:
    env = os.environ.get("BORDERRISK_KCS_DIR")
    return Path(env) if env else REPO.parent / "shared" / "datasets" / "kcs"


def test_the_kcs_mapping_maps_a_sample_of_the_real_file(tmp_path):
    source = _kcs_dir() / "df_syn_train_eng.csv"
    if not source.is_file():
        pytest.skip(f"KCS data set not found at {source}")
    raw = pd.read_csv(source, dtype=str, keep_default_na=False, nrows=2000)
    assert (raw["HS6 Code"].str.startswith("0")).any()
    # as a spreadsheet would save it again: HS codes read as numbers lose their leading zero
    resaved = raw.assign(**{"HS6 Code": raw["HS6 Code"].str.lstrip("0")})
    sample = tmp_path / "kcs-sample.csv"
    resaved.to_csv(sample, index=False)
    loaded = load_file("cargo", sample, KCS_MAPPING, labelled=True)
    assert loaded.ok, loaded.failures.head()
    assert loaded.rows_read == 2000 == len(loaded.frame) + len(loaded.excluded)
    # the exclusions are the documented ones, each with its reason
    reasons = set(loaded.excluded["reason"])
    assert reasons <= {
        "net mass recorded as 0 kg",
        "country of origin unknown (ZZ)",
        "country of departure unknown (ZZ)",
    }
    zero = raw.index[raw["Net Mass"].astype(float) <= 0]
    assert set(zero) <= set(loaded.excluded["row"])
    f = loaded.frame
    kept = raw.loc[f.index]
    assert (f["declaration_id"] == kept["Declaration ID"]).all()
    assert (f["hs_code"] == kept["HS6 Code"]).all()  # the leading zeros are back
    assert (f["declared_at"] == pd.to_datetime(kept["Date"])).all()
    assert (f["declared_value"] == kept["Item Price"].astype(float)).all()
    assert (f["net_mass_kg"] == kept["Net Mass"].astype(float)).all()
    assert (f["tax_rate"] == kept["Tax Rate"].astype(float)).all()
    assert (f["office_id"] == kept["Office ID"]).all() and (f["tax_type"] == kept["Tax Type"]).all()
    assert (f["fraud"].astype(int) == kept["Fraud"].astype(int)).all()
    assert f["courier_id"].isna().sum() == (kept["Courier ID"] == "").sum()
    assert f["inspected"].all() and (f["selection"] == "targeted").all()


def test_a_file_in_the_schema_needs_no_mapping(tmp_path, small_history):
    """Our own history format (the generator's, the decision-log export's) maps onto itself."""
    from features.frames import history_schema, validate

    history, _ = small_history
    path = tmp_path / "history.parquet"
    history.head(3000).to_parquet(path, index=False)
    loaded = load_file("cargo", path, None, labelled=True)
    assert loaded.ok and len(loaded.frame) == 3000
    expected = validate(history.head(3000), history_schema("cargo"))
    for col in (
        "declaration_id",
        "hs_code",
        "declared_at",
        "declared_value",
        "fraud",
        "inspected",
        "selection",
    ):
        pd.testing.assert_series_equal(loaded.frame[col], expected[col], check_names=False, check_dtype=False)
