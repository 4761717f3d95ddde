"""The models find what was planted, on a later period they never saw."""

from __future__ import annotations

import numpy as np
import pytest

from features.schemas import SCHEMAS
from models.scoring import Scorer
from tests.conftest import record_of
from training.metrics import top_k_mask
from training.pipeline import TrainConfig, train


def _expected_precision(trained, rate=0.05) -> tuple[float, float]:
    """Mean true probability of the top ``rate`` of the later flow: model ranking vs oracle ranking."""
    later = trained.later
    scorer = Scorer(trained.result.bundle, red_share=0.05, yellow_share=0.1)
    margin = scorer.score_columns({c: later[c] for c in later.columns}, explain=False).margin
    oracle = later["oracle_p"].to_numpy()
    return float(oracle[top_k_mask(margin, rate)].mean()), float(oracle[top_k_mask(oracle, rate)].mean())


@pytest.mark.parametrize("fixture", ["cargo_trained", "passenger_trained"])
def test_model_reaches_90_percent_of_the_oracle_precision_at_5_percent(fixture, request):
    model, oracle = _expected_precision(request.getfixturevalue(fixture))
    assert model >= 0.9 * oracle, f"model {model:.3f} vs oracle {oracle:.3f} ({model / oracle:.1%})"


def test_an_undervalued_declaration_names_undervaluation_among_its_top_reasons(cargo_trained):
    later = cargo_trained.later
    scorer = Scorer(cargo_trained.result.bundle, red_share=0.05, yellow_share=0.1)
    # An ordinary declaration from a known importer, then the same goods declared at a fifth of their value.
    base = later[(later["country_of_origin"] == later["country_of_departure"])].iloc[10]
    record = SCHEMAS["cargo"].model_validate(record_of(base)).model_dump()
    ref, _ = scorer.builder.reference_unit_value(record["hs_code"][:6], record["country_of_origin"])
    honest = record | {"declared_value": ref * record["net_mass_kg"]}
    under = record | {"declared_value": 0.2 * ref * record["net_mass_kg"]}
    score_honest, _, _ = scorer.score_record(honest)
    score_under, _, explanation = scorer.score_record(under)
    assert score_under > score_honest
    top3 = [c["feature"] for c in explanation["contributions"][:3]]
    assert "unit_value_ratio" in top3, top3
    reason = next(c["reason"] for c in explanation["contributions"] if c["feature"] == "unit_value_ratio")
    assert "80 % below the reference" in reason and record["country_of_origin"] in reason


def test_channels_follow_the_capacity_shares(cargo_trained):
    scorer = Scorer(cargo_trained.result.bundle, red_share=0.05, yellow_share=0.10)
    valid = cargo_trained.result.valid_frame
    channels = np.array(scorer.score_columns({c: valid[c] for c in valid.columns}, explain=False).channel)
    assert abs((channels == "red").mean() - 0.05) < 0.01
    assert abs((channels == "yellow").mean() - 0.10) < 0.01


def test_same_data_and_seed_give_the_same_model(tmp_path):
    from training.synth import generate_cargo

    df = generate_cargo(20_000, seed=9, days=200)
    for name in ("a", "b"):
        train(df, TrainConfig(domain="cargo", seed=1, max_rounds=60)).bundle.save(tmp_path / name)
    for file in ("model.txt", "feature_state.json", "calibration.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file


def test_training_refuses_a_history_with_bad_rows():
    from features.frames import FrameValidationError
    from training.synth import generate_cargo

    df = generate_cargo(5_000, seed=2, days=100)
    df.loc[3, "net_mass_kg"] = -1.0
    df.loc[7, "country_of_origin"] = "XX"
    with pytest.raises(FrameValidationError) as info:
        train(df, TrainConfig(domain="cargo"))
    failures = info.value.failures
    assert set(failures["column"]) >= {"net_mass_kg", "country_of_origin"}
    assert {3, 7} <= set(failures["index"].dropna().astype(int))
