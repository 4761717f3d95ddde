"""The feature policy is enforced by training, and the proxy check finds what the features carry."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from pydantic import ValidationError

from features.common import FeatureDef, as_float_array
from features.passenger import PassengerFeatures
from training.pipeline import TrainConfig, train
from training.policy import FeaturePolicy, PolicyViolation, check_features, load_policy, matches

SMALL = {"max_rounds": 40, "early_stopping_rounds": 10}


def test_policy_files_are_valid_frozen_and_strict(tmp_path):
    cargo, passenger = load_policy("cargo"), load_policy("passenger")
    assert {"racial_or_ethnic_origin", "religion_or_belief", "health"} <= set(passenger.prohibited)
    assert set(passenger.monitored) == {"nationality", "sex", "birth_year"}
    assert set(cargo.monitored) == {"country_of_origin"}
    assert "unit_value_ratio" in cargo.allowed_derived_uses["country_of_origin"].features
    with pytest.raises(ValidationError):
        passenger.allow_monitored_features = True  # type: ignore[misc]
    bad = tmp_path / "passenger.yaml"
    text = (load_policy.__globals__["POLICY_DIR"] / "passenger.yaml").read_text()
    bad.write_text(text + "\nallow_everything: true\n")
    with pytest.raises(ValueError, match="allow_everything"):
        load_policy("passenger", bad)
    # a derived use needs a real justification, and prohibited attributes can have none
    raw = passenger.model_dump()
    with pytest.raises(ValidationError, match="justification"):
        FeaturePolicy.model_validate(
            raw | {"allowed_derived_uses": {"nationality": {"features": ["x"], "justification": "because"}}}
        )
    long = "x" * 100
    with pytest.raises(ValidationError, match="only monitored attributes"):
        FeaturePolicy.model_validate(
            raw | {"allowed_derived_uses": {"ethnicity": {"features": ["x"], "justification": long}}}
        )


@pytest.mark.parametrize(
    ("name", "alias", "hit"),
    [
        ("ethnicity", "ethnicity", True),
        ("passengerEthnicity_code", "ethnicity", True),
        ("ethnicityx", "ethnicity", False),
        ("hs6_country_of_origin_hit_rate", "country_of_origin", True),
        ("origin_indicator", "country_of_origin", False),
        ("has_agency", "age", False),
        ("age_band", "age", True),
    ],
)
def test_names_match_on_whole_words(name, alias, hit):
    assert matches(name, alias) is hit


class _WithEthnicity(PassengerFeatures):
    """A builder someone extended with an attribute a PNR file may carry."""

    categoricals: ClassVar[dict[str, tuple[str, ...]]] = {
        **PassengerFeatures.categoricals,
        "ethnic_group": ("ethnicity",),
    }

    def category_label(self, name: str) -> str:
        return "ethnic group" if name == "ethnic_group" else super().category_label(name)

    def category_values(self, name, cols):
        if name == "ethnic_group":
            return np.asarray(cols["ethnicity"], dtype=object)
        return super().category_values(name, cols)


class _WithNationality(PassengerFeatures):
    categoricals: ClassVar[dict[str, tuple[str, ...]]] = {
        **PassengerFeatures.categoricals,
        "nationality": ("nationality",),
    }

    def category_label(self, name: str) -> str:
        return "nationality" if name == "nationality" else super().category_label(name)


class _WithMealCode(PassengerFeatures):
    """A harmless-looking feature that is in fact a near-copy of sex (a planted proxy)."""

    def numeric_defs(self):
        return [
            *super().numeric_defs(),
            FeatureDef("meal_code", "meal code", "numeric", ("meal_preference",)),
        ]

    def numeric_block(self, cols):
        return np.column_stack([super().numeric_block(cols), as_float_array(cols["meal_preference"])])


def _small_history(rows=12_000, seed=4):
    from training.synth import generate_passenger

    return generate_passenger(rows, seed=seed, days=120)


def test_training_refuses_a_prohibited_attribute(monkeypatch):
    df = _small_history(4_000)
    df["ethnicity"] = np.where(np.arange(len(df)) % 3 == 0, "A", "B")
    monkeypatch.setattr("training.pipeline.builder_class", lambda domain: _WithEthnicity)
    with pytest.raises(PolicyViolation) as info:
        train(df, TrainConfig(domain="passenger", **SMALL))
    message = str(info.value)
    assert "feature 'ethnic_group'" in message and "source field 'ethnicity'" in message
    assert "racial or ethnic origin" in message and "training/policies/passenger.yaml" in message


def test_training_refuses_a_monitored_attribute_by_default(monkeypatch):
    monkeypatch.setattr("training.pipeline.builder_class", lambda domain: _WithNationality)
    with pytest.raises(
        PolicyViolation, match="feature 'nationality' uses the monitored attribute 'nationality'"
    ):
        train(_small_history(4_000), TrainConfig(domain="passenger", **SMALL))


def test_cargo_policy_allows_the_listed_derived_uses_only(cargo_trained):
    policy = load_policy("cargo")
    features = cargo_trained.result.bundle.builder().feature_defs
    problems, allowed = check_features(policy, features)
    assert problems == []
    uses = {u["feature"]: u for u in allowed}
    assert {"unit_value_ratio", "transshipment"} <= set(uses)
    assert "Union Customs Code" in uses["unit_value_ratio"]["justification"]
    direct = FeatureDef("country_of_origin", "origin", "categorical", ("country_of_origin",))
    unlisted = FeatureDef("origin_risk", "risk of the origin", "numeric", ("country_of_origin", "hs_code"))
    problems, _ = check_features(policy, [*features, direct, unlisted])
    assert any(
        "'country_of_origin' uses the monitored attribute 'country_of_origin' directly" in p for p in problems
    )
    assert any("'origin_risk'" in p and "derived feature the policy does not list" in p for p in problems)
    # the same direct use is allowed only when the policy says so
    lenient = policy.model_copy(update={"allow_monitored_features": True})
    assert check_features(lenient, [direct])[0] == []


def test_model_card_records_the_policy_decision_and_proxy_check(cargo_trained, passenger_trained):
    cargo = cargo_trained.result.bundle.metadata
    assert cargo["feature_policy"]["result"] == "passed"
    assert cargo["feature_policy"]["file"] == "training/policies/cargo.yaml"
    assert "unit_value_ratio" in {u["feature"] for u in cargo["feature_policy"]["allowed_uses"]}
    assert "country_of_origin" in cargo["proxy_check"]
    passenger = passenger_trained.result.bundle.metadata
    assert {"nationality", "sex", "birth_year"} <= set(passenger["feature_policy"]["excluded_inputs"])
    assert set(passenger["proxy_check"]) == {"nationality", "sex", "age_band"}
    # sex is independent of every feature in the synthetic history: no proxy
    assert passenger["proxy_check"]["sex"]["flagged"] is False
    assert passenger["proxy_check"]["sex"]["auc"] < 0.65
    assert passenger_trained.result.metrics["proxy_flagged_sex"] == 0.0
    groups = passenger["group_metrics"]["groups"]
    assert groups["nationality"] and {"group", "rows", "red_share", "hit_rate"} <= set(
        groups["nationality"][0]
    )
    assert set(passenger["drift_reference"]) >= {"bag_weight_kg", "origin_airport"}


def test_proxy_results_reach_the_mlflow_run(registered):
    from mlflow import MlflowClient

    from training.registry import resolve

    reg = resolve(registered, "passenger")
    run = MlflowClient(tracking_uri=registered.mlflow_uri).get_run(reg.run_id)
    assert "proxy_auc_nationality" in run.data.metrics and "proxy_flagged_sex" in run.data.metrics


def test_proxy_check_flags_a_planted_proxy(monkeypatch):
    df = _small_history()
    rng = np.random.default_rng(0)
    code = df["sex"].map({"F": 1.0, "M": 2.0, "X": 3.0}).to_numpy()
    df["meal_preference"] = np.where(rng.random(len(df)) < 0.05, rng.integers(1, 4, len(df)), code)
    monkeypatch.setattr("training.pipeline.builder_class", lambda domain: _WithMealCode)
    result = train(df, TrainConfig(domain="passenger", **SMALL))
    sex = result.bundle.metadata["proxy_check"]["sex"]
    assert sex["flagged"] is True and sex["auc"] > 0.9
    assert sex["carried_by"][0]["feature"] == "meal_code"
    assert result.metrics["proxy_flagged_sex"] == 1.0
