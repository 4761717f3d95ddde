"""Tests of the synthetic inspection-history generators (schema, invariants, selection bias, learnability)."""

from __future__ import annotations

import datetime as dt

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from training.synth import generate_cargo, generate_passenger
from training.synth.cargo import CARGO_COLUMNS, TRANSSHIPMENT_HUBS
from training.synth.passenger import HOME_AIRPORTS, PASSENGER_COLUMNS, RISK_TRANSIT_HUBS

START = dt.date(2024, 1, 1)

CARGO_STR = (
    "declaration_id",
    "office_id",
    "process_type",
    "import_type",
    "import_use",
    "payment_type",
    "transport_mode",
    "declarant_id",
    "importer_id",
    "seller_id",
    "courier_id",
    "hs_code",
    "country_of_departure",
    "country_of_origin",
    "origin_indicator",
    "tax_type",
    "selection",
)
PASSENGER_STR = (
    "record_id",
    "carrier",
    "flight_number",
    "origin_airport",
    "destination_airport",
    "ticket_type",
    "payment_method",
    "travel_class",
    "document_type",
    "document_issuing_country",
    "travel_agency_id",
    "nationality",
    "sex",
    "selection",
)


@pytest.fixture(scope="module")
def cargo() -> pd.DataFrame:
    return generate_cargo(60_000, seed=11)


@pytest.fixture(scope="module")
def passenger() -> pd.DataFrame:
    return generate_passenger(60_000, seed=11)


# --------------------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------------------


def test_cargo_schema(cargo: pd.DataFrame) -> None:
    assert tuple(cargo.columns) == CARGO_COLUMNS
    for col in CARGO_STR:
        assert cargo[col].dtype == "str", col
    assert cargo["declared_at"].dtype == "datetime64[us]"
    assert cargo["declared_at"].dt.tz is None
    for col in ("tax_rate", "net_mass_kg", "declared_value", "oracle_p"):
        assert cargo[col].dtype == np.float64, col
    assert cargo["inspected"].dtype == bool
    assert cargo["fraud"].dtype == "Int8"
    assert cargo["revenue_recovered"].dtype == "Float64"

    assert cargo["declaration_id"].is_unique
    assert cargo["declaration_id"].str.match(r"^C\d+$").all()
    assert set(cargo["process_type"]) == {"A", "B", "C"}
    assert cargo["hs_code"].str.len().isin([6, 8, 10]).all()
    assert cargo["hs_code"].str.match(r"^\d+$").all()
    assert cargo["hs_code"].str.slice(0, 6).nunique() >= 120
    assert cargo["hs_code"].str.slice(0, 2).nunique() >= 20
    assert cargo["office_id"].nunique() == 20
    assert cargo["office_id"].str.match(r"^\d{3}$").all()
    assert {"10", "40", "50"} <= set(cargo["transport_mode"])
    for col in ("country_of_departure", "country_of_origin"):
        assert cargo[col].str.match(r"^[A-Z]{2}$").all()
    assert set(cargo["origin_indicator"]) <= {"Y", "N", "G"}
    assert (cargo["net_mass_kg"] > 0).all()
    assert (cargo["declared_value"] >= 0).all()
    assert (cargo["tax_rate"] >= 0).all()
    assert cargo[["seller_id", "courier_id"]].isna().mean().between(0.03, 0.97).all()
    assert cargo["courier_id"].isna().mean() > 0.5  # mostly missing
    assert cargo.drop(columns=["seller_id", "courier_id", "fraud", "revenue_recovered"]).notna().all().all()


def test_passenger_schema(passenger: pd.DataFrame) -> None:
    df = passenger
    assert tuple(df.columns) == PASSENGER_COLUMNS
    for col in PASSENGER_STR:
        assert df[col].dtype == "str", col
    for col in ("departure_at", "booking_at", "document_expiry"):
        assert df[col].dtype == "datetime64[us]", col
    for col in ("party_size", "checked_bags", "trips_last_12m", "birth_year"):
        assert df[col].dtype == np.int64, col
    assert df["bag_weight_kg"].dtype == np.float64
    assert df["oracle_p"].dtype == np.float64
    assert df["inspected"].dtype == bool
    assert df["finding"].dtype == "Int8"

    assert df["record_id"].is_unique
    assert df["carrier"].str.match(r"^[A-Z0-9]{2}$").all()
    assert (df["flight_number"].str.slice(0, 2) == df["carrier"]).all()
    assert df["origin_airport"].str.match(r"^[A-Z]{3}$").all()
    assert 35 <= df["origin_airport"].nunique() <= 45
    assert set(df["destination_airport"]) == set(HOME_AIRPORTS)
    assert set(df["ticket_type"]) == {"one_way", "return"}
    assert set(df["payment_method"]) == {"cash", "card", "transfer", "voucher"}
    assert set(df["travel_class"]) == {"economy", "premium_economy", "business", "first"}
    assert set(df["document_type"]) == {"passport", "id_card", "residence_permit"}
    assert set(df["sex"]) == {"F", "M", "X"}
    assert (df["party_size"] >= 1).all() and (df["checked_bags"] >= 0).all()
    assert (df["bag_weight_kg"] >= 0).all()
    assert (df.loc[df["checked_bags"] == 0, "bag_weight_kg"] == 0).all()
    assert (df.loc[df["checked_bags"] > 0, "bag_weight_kg"] > 0).all()
    assert (df["booking_at"] < df["departure_at"]).all()
    assert (df["document_expiry"] > df["booking_at"]).mean() > 0.98
    assert (df["document_expiry"] == df["document_expiry"].dt.normalize()).all()
    assert df["birth_year"].between(1920, 2026).all()
    assert (df["trips_last_12m"] >= 0).all()
    assert 0.2 < df["travel_agency_id"].isna().mean() < 0.8
    assert df.drop(columns=["travel_agency_id", "finding"]).notna().all().all()

    routes = df["route"]
    assert routes.map(lambda r: isinstance(r, list)).all()
    assert routes.map(len).isin([2, 3]).all()
    assert (routes.str[0] == df["origin_airport"]).all()
    assert (routes.str[-1] == df["destination_airport"]).all()
    assert routes.map(lambda r: all(isinstance(a, str) and len(a) == 3 for a in r)).all()
    assert routes.iloc[0] is not routes.iloc[1]  # every row owns its list


def test_passenger_route_writes_as_list_of_strings(tmp_path) -> None:
    import pyarrow.parquet as pq

    df = generate_passenger(500, seed=3)
    path = tmp_path / "p.parquet"
    df.to_parquet(path)
    field = pq.read_schema(path).field("route")
    assert str(field.type) in {"list<element: string>", "list<item: string>", "large_list<item: string>"}


# --------------------------------------------------------------------------------------------------
# determinism, ordering, edge cases
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gen", [generate_cargo, generate_passenger])
def test_deterministic_for_a_seed(gen) -> None:
    a = gen(3_000, seed=5)
    b = gen(3_000, seed=5)
    pd.testing.assert_frame_equal(a, b)
    c = gen(3_000, seed=6)
    assert not a["oracle_p"].equals(c["oracle_p"])


@pytest.mark.parametrize(
    ("gen", "col"), [(generate_cargo, "declared_at"), (generate_passenger, "departure_at")]
)
def test_time_sorted_and_in_range(gen, col) -> None:
    start, days = dt.date(2023, 3, 15), 200
    df = gen(20_000, seed=2, start=start, days=days)
    t = df[col]
    assert t.is_monotonic_increasing
    assert t.min() >= pd.Timestamp(start)
    assert t.max() < pd.Timestamp(start) + pd.Timedelta(days=days)
    assert t.dt.normalize().nunique() > 0.9 * days
    weekday_counts = t.dt.day_of_week.value_counts()
    assert weekday_counts.max() / weekday_counts.min() > 1.1  # realistic weekday variation
    assert len(df) == 20_000


def test_cargo_weekday_and_hour_profile(cargo: pd.DataFrame) -> None:
    dow = cargo["declared_at"].dt.day_of_week.value_counts(normalize=True)
    assert dow[6] < 0.5 * dow[2]  # Sundays are quiet
    hours = cargo["declared_at"].dt.hour.value_counts(normalize=True)
    assert hours.loc[9] > 3 * hours.loc[2]


@pytest.mark.parametrize("gen", [generate_cargo, generate_passenger])
def test_tiny_and_invalid_inputs(gen) -> None:
    assert len(gen(1, seed=0)) == 1
    assert len(gen(7, seed=0, days=1)) == 7
    with pytest.raises(ValueError):
        gen(0, seed=0)
    with pytest.raises(ValueError):
        gen(10, seed=0, random_share=1.5)


def test_invalid_targeting_bias() -> None:
    with pytest.raises(ValueError):
        generate_passenger(10, seed=0, targeting_bias="Germany")


# --------------------------------------------------------------------------------------------------
# outcomes and selection
# --------------------------------------------------------------------------------------------------


def _check_outcome_consistency(df: pd.DataFrame, outcome: str) -> None:
    insp = df["inspected"].to_numpy()
    assert (df[outcome].notna().to_numpy() == insp).all()
    assert set(df.loc[df["inspected"], outcome].astype(int)) == {0, 1}
    assert set(df["selection"]) == {"random", "targeted", "none"}
    assert ((df["selection"] == "none").to_numpy() == ~insp).all()
    p = df["oracle_p"]
    assert ((p > 0) & (p < 1)).all()
    assert p.std() > 0.02
    assert p.nunique() > 0.5 * len(df)


def test_cargo_outcomes(cargo: pd.DataFrame) -> None:
    _check_outcome_consistency(cargo, "fraud")
    rev = cargo["revenue_recovered"]
    insp = cargo["inspected"]
    assert (rev.notna() == insp).all()
    assert (rev[insp] >= 0).all()
    assert (rev[insp & (cargo["fraud"] == 0)] == 0).all()
    assert (rev[insp & (cargo["fraud"] == 1)] > 0).all()
    assert 0.04 <= cargo["oracle_p"].mean() <= 0.06
    assert 0.12 <= insp.mean() <= 0.20
    assert cargo["selection"].eq("random").mean() == pytest.approx(0.02, abs=0.004)


def test_passenger_outcomes(passenger: pd.DataFrame) -> None:
    _check_outcome_consistency(passenger, "finding")
    assert 0.02 <= passenger["oracle_p"].mean() <= 0.03
    assert 0.12 <= passenger["inspected"].mean() <= 0.20
    assert passenger["selection"].eq("random").mean() == pytest.approx(0.02, abs=0.004)


@pytest.mark.parametrize(("gen", "outcome"), [(generate_cargo, "fraud"), (generate_passenger, "finding")])
def test_targeted_hit_rate_beats_random(gen, outcome) -> None:
    df = gen(150_000, seed=21)
    by = df.groupby("selection")
    hit = by[outcome].mean()
    assert hit["targeted"] > 1.4 * hit["random"]
    # the random sample is unbiased: its true rate matches the population's
    p = by["oracle_p"].mean()
    assert p["random"] == pytest.approx(df["oracle_p"].mean(), rel=0.2)
    assert p["targeted"] > 1.5 * p["none"]


def test_random_share_controls_random_selection() -> None:
    df = generate_cargo(40_000, seed=4, random_share=0.1)
    assert df["selection"].eq("random").mean() == pytest.approx(0.1, abs=0.01)
    none = generate_passenger(20_000, seed=4, random_share=0.0)
    assert not none["selection"].eq("random").any()


def test_targeting_bias_changes_selection_not_risk() -> None:
    nat = "TR"
    plain = generate_passenger(80_000, seed=8)
    biased = generate_passenger(80_000, seed=8, targeting_bias=nat)
    # everything but the selection (and hence the revealed outcome) is identical
    same = [c for c in PASSENGER_COLUMNS if c not in ("inspected", "selection", "finding")]
    pd.testing.assert_frame_equal(plain[same], biased[same])
    is_nat = biased["nationality"] == nat
    assert is_nat.mean() > 0.02
    rate_plain = plain.loc[is_nat, "inspected"].mean()
    rate_biased = biased.loc[is_nat, "inspected"].mean()
    assert rate_biased > 2.0 * rate_plain
    assert rate_biased > 1.6 * biased.loc[~is_nat, "inspected"].mean()
    # other nationalities are selected exactly as before
    assert (plain.loc[~is_nat, "selection"] == biased.loc[~is_nat, "selection"]).all()
    # the over-selected group is not riskier
    mean_nat = biased.loc[is_nat, "oracle_p"].mean()
    mean_rest = biased.loc[~is_nat, "oracle_p"].mean()
    assert mean_nat == pytest.approx(mean_rest, rel=0.25)
    # and without the bias option the legacy rule ignores nationality entirely
    assert abs(rate_plain - plain.loc[~is_nat, "inspected"].mean()) < 0.05


# --------------------------------------------------------------------------------------------------
# planted mechanisms are present
# --------------------------------------------------------------------------------------------------


def test_cargo_mechanisms_visible(cargo: pd.DataFrame) -> None:
    df = cargo
    hs6 = df["hs_code"].str.slice(0, 6)
    log_uv = np.log(df["declared_value"] / df["net_mass_kg"])
    ratio = log_uv - log_uv.groupby([hs6, df["country_of_origin"]]).transform("median")
    p = df["oracle_p"]
    assert p[ratio < np.log(0.4)].mean() > 5 * p[ratio.abs() < 0.2].mean()
    trans = df["country_of_departure"].isin(TRANSSHIPMENT_HUBS) & (
        df["country_of_departure"] != df["country_of_origin"]
    )
    assert 0.05 < trans.mean() < 0.2
    assert p[trans].median() > 2 * p[~trans].median()
    first = df.groupby("importer_id").cumcount() == 0
    assert p[first].median() > 2 * p[~first].median()


def test_cargo_entities_persist() -> None:
    df = generate_cargo(50_000, seed=9, days=450)
    cut = df["declared_at"] < pd.Timestamp(START) + pd.Timedelta(days=360)
    late = df[~cut]
    for col, min_share in (("importer_id", 0.8), ("declarant_id", 0.99), ("seller_id", 0.9)):
        seen = late[col].isin(set(df.loc[cut, col].dropna()))
        assert seen[late[col].notna()].mean() > min_share, col
    n_imp = df["importer_id"].nunique()
    assert 0.5 * 50_000 / 25 < n_imp <= 50_000 / 25
    counts = df["importer_id"].value_counts()
    assert counts.iloc[0] > 20 * counts.median()  # Zipf-like activity


def test_passenger_mechanisms_visible(passenger: pd.DataFrame) -> None:
    df = passenger
    p = df["oracle_p"]
    lead = df["departure_at"] - df["booking_at"]
    combo = (
        (df["ticket_type"] == "one_way") & (df["payment_method"] == "cash") & (lead < pd.Timedelta(hours=48))
    )
    assert combo.mean() > 0.003
    assert p[combo].mean() > 8 * p[~combo].mean()
    hub = df["route"].map(lambda r: any(a in RISK_TRANSIT_HUBS for a in r[1:-1]))
    assert p[hub].mean() > 1.8 * p[~hub].mean()
    per_bag = df["bag_weight_kg"] / df["checked_bags"].clip(lower=1)
    assert p[per_bag > 32].mean() > 5 * p[(per_bag > 5) & (per_bag < 22)].mean()
    soon = (df["document_expiry"] - df["departure_at"]) < pd.Timedelta(days=90)
    assert p[soon].mean() > 2 * p[~soon].mean()
    premium = df["travel_class"].isin(["business", "first"])
    assert not df.loc[premium, "selection"].eq("targeted").any()


# --------------------------------------------------------------------------------------------------
# learnability: a plain model on the biased history gets close to the oracle
# --------------------------------------------------------------------------------------------------


def _past_stats(
    key: pd.Series, hit: pd.Series, inspected: pd.Series, prior: float, weight: float
) -> pd.DataFrame:
    """Time-ordered history of an entity from strictly earlier rows: count, inspections, hit rate."""
    frame = pd.DataFrame({"k": key.fillna("__none__"), "h": hit, "i": inspected})
    g = frame.groupby("k", sort=False)
    hits_before = g["h"].cumsum() - frame["h"]
    insp_before = g["i"].cumsum() - frame["i"]
    out = pd.DataFrame(
        {
            "n": g.cumcount().astype(float),
            "insp": insp_before,
            "rate": (hits_before + prior * weight) / (insp_before + weight),
        }
    )
    out.loc[key.isna().to_numpy()] = np.nan
    return out


def _precision_ratio(df: pd.DataFrame, X: pd.DataFrame, label: str, cut: np.ndarray) -> tuple[float, float]:
    train = cut & df["inspected"].to_numpy()
    model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, random_state=0, n_jobs=2, verbose=-1)
    model.fit(X[train], df.loc[train, label].astype(int))
    score = model.predict_proba(X[~cut])[:, 1]
    p = df.loc[~cut, "oracle_p"].to_numpy()
    k = int(0.05 * len(p))
    model_precision = p[np.argsort(-score, kind="stable")[:k]].mean()
    oracle_precision = np.sort(p)[::-1][:k].mean()
    return float(model_precision), float(oracle_precision)


def _cargo_features(df: pd.DataFrame, cut: np.ndarray) -> pd.DataFrame:
    hs6 = df["hs_code"].str.slice(0, 6)
    log_uv = np.log(df["declared_value"] + 0.01) - np.log(df["net_mass_kg"])
    train = pd.DataFrame({"hs6": hs6, "origin": df["country_of_origin"], "luv": log_uv})[cut]
    by_pair = train.groupby(["hs6", "origin"])["luv"].agg(["median", "size"])
    by_hs = train.groupby("hs6")["luv"].median()
    pair_key = pd.MultiIndex.from_arrays([hs6, df["country_of_origin"]])
    pair = by_pair.reindex(pair_key)
    hs_median = hs6.map(by_hs).to_numpy()
    reference = np.where(pair["size"].fillna(0).to_numpy() >= 5, pair["median"].to_numpy(), hs_median)
    hit = df["fraud"].astype("float64").fillna(0.0)
    insp = df["inspected"].astype("float64")
    X = pd.DataFrame(index=df.index)
    X["uv_ratio"] = log_uv.to_numpy() - reference
    X["uv_ratio_hs"] = log_uv.to_numpy() - hs_median
    X["transshipment"] = (
        df["country_of_departure"].isin(TRANSSHIPMENT_HUBS)
        & (df["country_of_departure"] != df["country_of_origin"])
    ).astype(int)
    X["tax_rate"] = df["tax_rate"]
    X["chapter"] = hs6.str.slice(0, 2).astype(int)
    for name, key in (("importer", df["importer_id"]), ("declarant", df["declarant_id"]), ("hs", hs6)):
        stats = _past_stats(key, hit, insp, prior=0.05, weight=2.0)
        X[f"{name}_n"] = stats["n"]
        X[f"{name}_insp"] = stats["insp"]
        X[f"{name}_rate"] = stats["rate"]
    return X


def _passenger_features(df: pd.DataFrame) -> pd.DataFrame:
    X = pd.DataFrame(index=df.index)
    X["one_way"] = (df["ticket_type"] == "one_way").astype(int)
    X["payment"] = df["payment_method"].map({"card": 0, "cash": 1, "transfer": 2, "voucher": 3})
    X["lead_hours"] = (df["departure_at"] - df["booking_at"]).dt.total_seconds() / 3600
    X["risk_hub"] = df["route"].map(lambda r: any(a in RISK_TRANSIT_HUBS for a in r[1:-1])).astype(int)
    X["checked_bags"] = df["checked_bags"]
    X["kg_per_bag"] = df["bag_weight_kg"] / df["checked_bags"].clip(lower=1)
    X["doc_days_left"] = (df["document_expiry"] - df["departure_at"]).dt.days
    X["party_size"] = df["party_size"]
    X["trips_last_12m"] = df["trips_last_12m"]
    X["travel_class"] = df["travel_class"].map(
        {"economy": 0, "premium_economy": 1, "business": 2, "first": 3}
    )
    hit = df["finding"].astype("float64").fillna(0.0)
    stats = _past_stats(
        df["travel_agency_id"], hit, df["inspected"].astype("float64"), prior=0.025, weight=4.0
    )
    X["agency_n"] = stats["n"]
    X["agency_insp"] = stats["insp"]
    X["agency_rate"] = stats["rate"]
    return X


def _first_12_of_15_months(times: pd.Series) -> np.ndarray:
    return (times < pd.Timestamp(START) + pd.Timedelta(days=360)).to_numpy()


def test_cargo_learnable_close_to_oracle() -> None:
    df = generate_cargo(120_000, seed=2024, days=450)
    cut = _first_12_of_15_months(df["declared_at"])
    model_p, oracle_p = _precision_ratio(df, _cargo_features(df, cut), "fraud", cut)
    print(f"cargo precision@5%: model {model_p:.4f} oracle {oracle_p:.4f} ratio {model_p / oracle_p:.3f}")
    assert model_p >= 0.9 * oracle_p


def test_passenger_learnable_close_to_oracle() -> None:
    df = generate_passenger(120_000, seed=2024, days=450)
    cut = _first_12_of_15_months(df["departure_at"])
    model_p, oracle_p = _precision_ratio(df, _passenger_features(df), "finding", cut)
    print(f"passenger precision@5%: model {model_p:.4f} oracle {oracle_p:.4f} ratio {model_p / oracle_p:.3f}")
    assert model_p >= 0.9 * oracle_p
