"""One feature code path: the same record gives the same features one at a time or in bulk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.builder import FeatureState, columns_of_record
from features.cargo import CargoFeatures
from features.common import OTHER, Vocabulary
from features.passenger import PassengerFeatures
from features.schemas import MONITORED_ATTRIBUTES
from tests.conftest import record_of
from training.synth import generate_cargo, generate_passenger


@pytest.fixture(scope="module")
def cargo_df() -> pd.DataFrame:
    return generate_cargo(20_000, seed=1, days=200)


@pytest.fixture(scope="module")
def passenger_df() -> pd.DataFrame:
    return generate_passenger(20_000, seed=2, days=200)


def _with_edge_cases(df: pd.DataFrame, domain: str) -> pd.DataFrame:
    """Some rows edited toward what the small and large branches handle separately: missing
    parties, codes unseen in training, a long HS code, a two-stop route, an instant before 1970."""
    df = df.copy()
    rows = df.index[::9]
    if domain == "cargo":
        df.loc[rows[::2], "seller_id"] = None
        df.loc[rows[1::3], "courier_id"] = "CR-NEW"
        df.loc[rows[::5], "office_id"] = "999"
        df.loc[rows[::7], "hs_code"] = df.loc[rows[::7], "hs_code"].str[:6] + "0199"
        df.loc[rows[3::11], "declared_at"] = pd.Timestamp("1969-12-31 23:30")
    else:
        df.loc[rows[::2], "travel_agency_id"] = None
        df.loc[rows[::5], "carrier"] = "Q9"
        df["route"] = df["route"].astype(object)
        for r in rows[::7]:
            df.at[r, "route"] = np.array(
                [df.at[r, "origin_airport"], "ZZZ", "YYY", df.at[r, "destination_airport"]]
            )
    return df


@pytest.mark.parametrize(("cls", "frame"), [(CargoFeatures, "cargo_df"), (PassengerFeatures, "passenger_df")])
def test_row_path_equals_batch_path(cls, frame, request):
    """One record at a time, a few records, many records and a whole frame: bit for bit the same rows."""
    from features.common import SMALL
    from features.schemas import SCHEMAS
    from models.scoring import records_to_columns

    df = _with_edge_cases(request.getfixturevalue(frame), cls.domain)
    builder = cls(cls.fit(df))
    batch = builder.transform({c: df[c] for c in df.columns})
    assert batch.shape == (len(df), len(builder.feature_names))
    picked = [*range(0, len(df), 41), len(df) - 1]
    records = [SCHEMAS[cls.domain].model_validate(record_of(df.iloc[i])).model_dump() for i in picked]
    bits = batch[picked].view(np.uint64)  # NaN-aware and exact: the very same bits
    for k, record in enumerate(records):
        np.testing.assert_array_equal(
            builder.transform(columns_of_record(record)).view(np.uint64)[0], bits[k]
        )
    assert len(records) > SMALL  # the records as columns take the large branches, a few the small ones
    np.testing.assert_array_equal(builder.transform(records_to_columns(records)).view(np.uint64), bits)
    np.testing.assert_array_equal(
        builder.transform(records_to_columns(records[:30])).view(np.uint64), bits[:30]
    )
    few = df.iloc[picked[:30]]
    np.testing.assert_array_equal(
        builder.transform({c: few[c] for c in few.columns}).view(np.uint64), bits[:30]
    )


def test_state_round_trips_through_json(cargo_df):
    state = CargoFeatures.fit(cargo_df)
    again = FeatureState.from_json(state.to_json())
    assert again == state
    assert again.vocabulary_version == state.vocabulary_version
    a = CargoFeatures(state).transform({c: cargo_df[c] for c in cargo_df.columns})
    b = CargoFeatures(again).transform({c: cargo_df[c] for c in cargo_df.columns})
    np.testing.assert_array_equal(a, b)


def test_vocabulary_handles_rare_unseen_and_missing_explicitly():
    vocab = Vocabulary.fit(np.array(["a"] * 30 + ["b"] * 25 + ["rare"] * 3 + [None] * 4, dtype=object), 20)
    assert vocab.categories == ["a", "b", OTHER]
    codes = vocab.encode(np.array(["b", "rare", "never-seen", None], dtype=object))
    assert codes[0] == 1
    assert codes[1] == codes[2] == vocab.other_code
    assert np.isnan(codes[3])


def test_history_features_never_look_into_the_future(cargo_df):
    """Changing a later outcome leaves every earlier row's history features unchanged."""
    df = cargo_df.sort_values("declared_at").reset_index(drop=True)
    builder = CargoFeatures(CargoFeatures.fit(df))
    before = builder.training_history(df)
    late = df.index[(df["inspected"]) & (df["declared_at"] > df["declared_at"].quantile(0.8))][0]
    flipped = df.copy()
    flipped.loc[late, "fraud"] = 1 - flipped.loc[late, "fraud"]
    after = builder.training_history(flipped)
    day = df["declared_at"].dt.floor("D")
    earlier = (day <= day[late]).to_numpy()  # the same day counts as "not yet known" too
    np.testing.assert_array_equal(before[earlier], after[earlier])
    assert not np.array_equal(before[~earlier], after[~earlier]), "a later row should see the change"


def test_new_entity_gets_zero_history_and_missing_gets_nan(cargo_df):
    builder = CargoFeatures(CargoFeatures.fit(cargo_df))
    row = record_of(cargo_df.iloc[0]) | {"importer_id": "NEVER-SEEN", "seller_id": None}
    from features.schemas import CargoDeclaration

    x = builder.transform(columns_of_record(CargoDeclaration.model_validate(row).model_dump()))[0]
    names = builder.feature_names
    assert x[names.index("importer_seen")] == 0
    assert x[names.index("importer_hit_rate")] == pytest.approx(builder.state.prior_rate)
    assert np.isnan(x[names.index("seller_seen")])


@pytest.mark.parametrize("cls", [CargoFeatures, PassengerFeatures])
def test_no_feature_uses_a_monitored_or_sensitive_attribute(cls, request):
    df = request.getfixturevalue("cargo_df" if cls is CargoFeatures else "passenger_df")
    builder = cls(cls.fit(df))
    used = {s for f in builder.feature_defs for s in f.sources}
    direct = {f.name for f in builder.feature_defs}
    for attr in MONITORED_ATTRIBUTES[cls.domain]:
        assert attr not in direct
    if cls is PassengerFeatures:
        assert not used & {"nationality", "sex", "birth_year"}
