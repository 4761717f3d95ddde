"""Entity histories (parties, goods and their pairs, lanes, consignments) never look into the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.cargo import CargoFeatures
from features.schemas import MONITORED_ATTRIBUTES, CargoDeclaration
from training.synth import generate_cargo

BASE = CargoDeclaration.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([BASE | r for r in rows])
    df["declared_at"] = (
        pd.to_datetime(df["declared_at"], utc=True).dt.tz_localize(None).astype("datetime64[us]")
    )
    df["inspected"] = True
    df["selection"] = "targeted"
    df["fraud"] = df["fraud"].astype("Int8")
    return df


def _history(builder: CargoFeatures, df: pd.DataFrame, frozen_from=None) -> dict[str, np.ndarray]:
    counts = builder.training_history(df, frozen_from=frozen_from)
    return {h.name: counts[:, 3 * j : 3 * j + 3] for j, h in enumerate(builder.histories)}


@pytest.fixture(scope="module")
def repeat_shipments() -> pd.DataFrame:
    """The same importer ships the same goods (same HS, value, mass, route) on days 1, 1, 2, 3 and 5;
    a different importer ships them once on day 2. Findings on the second day-1 row and on day 3."""
    days = ["2025-01-01T08:00:00Z", "2025-01-01T15:00:00Z", "2025-01-02T09:00:00Z", "2025-01-03T09:00:00Z"]
    rows = [
        {"declaration_id": f"R{i}", "declared_at": d, "fraud": f}
        for i, (d, f) in enumerate(zip(days, [0, 1, 0, 1], strict=True))
    ]
    rows.append({"declaration_id": "R4", "declared_at": "2025-01-05T09:00:00Z", "fraud": 0})
    rows.append(
        {"declaration_id": "X1", "declared_at": "2025-01-02T10:00:00Z", "fraud": 0, "importer_id": "IMP9"}
    )
    return _frame(rows)


def test_pairs_lanes_and_consignments_count_only_earlier_days(repeat_shipments):
    df = repeat_shipments
    builder = CargoFeatures(CargoFeatures.fit(df))
    h = _history(builder, df)
    # (seen, inspected, hits) per row, in frame order R0 R1 R2 R3 R4 X1
    consignment = [[0, 0, 0], [0, 0, 0], [2, 2, 1], [4, 4, 1], [5, 5, 2], [2, 2, 1]]
    importer_hs = [[0, 0, 0], [0, 0, 0], [2, 2, 1], [3, 3, 1], [4, 4, 2], [0, 0, 0]]
    for name in (
        "consignment",
        "lane",
        "hs6_country_of_origin",
        "hs6_country_of_departure",
        "hs6_tax_type",
        "hs6",
    ):
        np.testing.assert_array_equal(h[name], consignment, err_msg=name)
    for name in ("importer_hs6", "office_importer", "importer"):
        np.testing.assert_array_equal(h[name], importer_hs, err_msg=name)


def test_the_history_is_frozen_from_the_validation_start(repeat_shipments):
    """From the freeze day on, rows see the totals before it, not the outcomes of later days."""
    df = repeat_shipments
    builder = CargoFeatures(CargoFeatures.fit(df))
    h = _history(builder, df, frozen_from=pd.Timestamp("2025-01-02 13:00"))  # taken at the day's start
    before_day_2 = [2, 2, 1]
    np.testing.assert_array_equal(
        h["consignment"], [[0, 0, 0], [0, 0, 0], before_day_2, before_day_2, before_day_2, before_day_2]
    )


def test_a_different_value_or_mass_is_a_different_consignment(repeat_shipments):
    df = repeat_shipments.copy()
    df.loc[4, "declared_value"] = 950.5
    df.loc[3, "net_mass_kg"] = 121.0
    builder = CargoFeatures(CargoFeatures.fit(df))
    h = _history(builder, df)
    np.testing.assert_array_equal(h["consignment"][[3, 4]], [[0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(h["lane"][[3, 4]], [[4, 4, 1], [5, 5, 2]])


@pytest.fixture(scope="module")
def cargo_df() -> pd.DataFrame:
    df = generate_cargo(8_000, seed=21, days=120).sort_values("declared_at").reset_index(drop=True)
    # repeat consignments, as real flows have them: copy earlier declarations' goods, value and mass
    rng = np.random.default_rng(3)
    later = rng.choice(np.arange(4_000, 8_000), 600, replace=False)
    source = rng.choice(np.arange(0, 4_000), 600)
    for col in (
        "hs_code",
        "declared_value",
        "net_mass_kg",
        "country_of_origin",
        "country_of_departure",
        "tax_type",
    ):
        df.loc[later, col] = df.loc[source, col].to_numpy()
    return df


def test_no_pair_history_sees_a_later_outcome(cargo_df):
    """Flipping one late outcome changes no earlier row's history, of any entity or pair; every
    entity's history changes for a later row that shares it."""
    df = cargo_df.copy()
    late = df.index[df["inspected"] & (df["declared_at"] > df["declared_at"].quantile(0.7))][0]
    follower = df.index[df["declared_at"] > df.loc[late, "declared_at"] + pd.Timedelta(days=3)][0]
    shared = ["importer_id", "declarant_id", "seller_id", "office_id", "hs_code", "country_of_origin"]
    shared += ["country_of_departure", "tax_type", "declared_value", "net_mass_kg"]
    df.loc[follower, shared] = df.loc[late, shared].to_numpy()
    builder = CargoFeatures(CargoFeatures.fit(df))
    before = builder.training_history(df)
    flipped = df.copy()
    flipped.loc[late, "fraud"] = 1 - flipped.loc[late, "fraud"]
    after = builder.training_history(flipped)
    day = df["declared_at"].dt.floor("D")
    earlier = (day <= day[late]).to_numpy()
    np.testing.assert_array_equal(before[earlier], after[earlier])
    for j, h in enumerate(builder.histories):
        hits = slice(3 * j + 2, 3 * j + 3)
        assert after[follower, hits] - before[follower, hits] == (1 if flipped.loc[late, "fraud"] else -1), (
            h.name
        )


def test_serving_totals_equal_the_training_history_of_a_row_after_the_cutoff(cargo_df):
    """A declaration the day after the cut-off gets, from the frozen state, what training would give it."""
    df = cargo_df
    builder = CargoFeatures(CargoFeatures.fit(df))
    nxt = df.iloc[[4100, 5000, 7000]].copy()
    nxt["declared_at"] = df["declared_at"].max() + pd.Timedelta(days=1)
    nxt["inspected"] = False
    nxt["fraud"] = pd.array([pd.NA] * 3, dtype="Int8")
    both = pd.concat([df, nxt], ignore_index=True)
    trained = builder.training_history(both)[-3:]
    served = builder.serving_history(CargoFeatures.with_derived({c: nxt[c] for c in nxt.columns}))
    np.testing.assert_array_equal(trained, served)


def test_feature_sources_are_declaration_fields_and_show_the_monitored_ones(cargo_df):
    builder = CargoFeatures(CargoFeatures.fit(cargo_df))
    fields = set(CargoDeclaration.model_fields)
    for f in builder.feature_defs:
        assert set(f.sources) <= fields, (f.name, f.sources)
    by_name = {f.name: set(f.sources) for f in builder.feature_defs}
    (monitored,) = MONITORED_ATTRIBUTES["cargo"]
    users = {n for n, s in by_name.items() if monitored in s}
    assert {"hs6_country_of_origin_hit_rate", "lane_hit_rate", "unit_value_ratio"} <= users
    assert by_name["consignment_seen"] == {"hs_code", "declared_value", "net_mass_kg"}
    assert monitored not in by_name["importer_hs6_hit_rate"]
