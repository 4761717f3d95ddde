"""Explanations are exact TreeSHAP values and add up to the model's margin."""

from __future__ import annotations

import numpy as np
import pytest
import shap

from models.explain import default_backend, fast_backend, pred_contrib_backend
from models.scoring import Scorer


def _matrix(trained, n=300):
    rows = trained.later.head(n)
    builder = trained.result.bundle.builder()
    return builder.transform({c: rows[c] for c in rows.columns})


def test_pred_contrib_equals_shap_tree_explainer(cargo_trained, passenger_trained):
    for trained in (cargo_trained, passenger_trained):
        booster = trained.result.bundle.booster
        X = _matrix(trained)
        ours = pred_contrib_backend(booster)(X)
        reference = shap.TreeExplainer(booster).shap_values(X)
        np.testing.assert_allclose(ours[:, :-1], reference, atol=1e-6, rtol=0)


def test_contributions_plus_base_equal_the_raw_margin(cargo_trained, passenger_trained):
    for trained in (cargo_trained, passenger_trained):
        booster = trained.result.bundle.booster
        X = _matrix(trained)
        contrib = pred_contrib_backend(booster)(X)
        np.testing.assert_allclose(contrib.sum(axis=1), booster.predict(X, raw_score=True), atol=1e-9)


def test_explanation_is_sorted_and_complete(cargo_trained):
    scorer = Scorer(cargo_trained.result.bundle, red_share=0.05, yellow_share=0.1)
    from features.schemas import CargoDeclaration
    from tests.conftest import record_of

    record = CargoDeclaration.model_validate(record_of(cargo_trained.later.iloc[3])).model_dump()
    score, _, explanation = scorer.score_record(record)
    items = explanation["contributions"]
    assert len(items) == len(scorer.builder.feature_names)
    sizes = [abs(i["contribution"]) for i in items]
    assert sizes == sorted(sizes, reverse=True)
    margin = explanation["base_value"] + sum(i["contribution"] for i in items)
    assert scorer.bundle.calibrator.apply(margin) == pytest.approx(score, rel=1e-12)
    assert all(i["reason"].endswith(("(raises risk)", "(lowers risk)")) for i in items)


def test_the_served_fast_backend_equals_pred_contrib_on_the_demo_models(cargo_trained, passenger_trained):
    for trained in (cargo_trained, passenger_trained):
        booster = trained.result.bundle.booster
        X = _matrix(trained, n=500)
        X[::7, 0] = np.nan  # missing values take LightGBM's default direction in both
        reference = pred_contrib_backend(booster)(X)
        fast = fast_backend(booster)
        np.testing.assert_allclose(fast(X), reference, atol=1e-9, rtol=0)
        for i in range(0, 500, 50):  # the one-row path the service uses
            np.testing.assert_allclose(fast(X[i : i + 1])[0], reference[i], atol=1e-9, rtol=0)
        assert default_backend(booster).name == "treeshap-linear"  # type: ignore[attr-defined]


# -- the fast explanation paths against the one-feature-at-a-time reference -------------------------


def _scorer(trained) -> Scorer:
    return Scorer(trained.result.bundle, red_share=0.05, yellow_share=0.1)


def _records(trained, domain: str, n: int) -> list[dict]:
    """Validated records of the later period, some edited toward the edge cases the reasons word
    differently: missing parties, codes never seen in training, a long HS code, a transit route."""
    from features.schemas import SCHEMAS
    from tests.conftest import record_of

    rows = trained.later.iloc[np.linspace(0, len(trained.later) - 1, n).astype(int)]
    payloads = [record_of(r) for _, r in rows.iterrows()]
    for i, p in enumerate(payloads):
        if domain == "cargo":
            if i % 5 == 0:
                p["seller_id"] = None
            if i % 7 == 0:
                p["courier_id"] = "CR-NEW"
            if i % 11 == 0:
                p["office_id"], p["importer_id"] = "999", f"NEVER-{i}"
            if i % 13 == 0:
                p["hs_code"] = p["hs_code"][:6] + "0199"
        else:
            if i % 5 == 0:
                p["travel_agency_id"] = None
            if i % 11 == 0:
                p["carrier"], p["flight_number"] = "Q9", "Q9123"
            if i % 13 == 0:
                p["route"] = [p["origin_airport"], "ZZZ", "YYY", p["destination_airport"]]
    return [SCHEMAS[domain].model_validate(p).model_dump() for p in payloads]


@pytest.mark.parametrize("domain", ["cargo", "passenger"])
def test_explanation_equals_the_reference(domain, request):
    from features.builder import columns_of_record
    from tests.models import reference_explanation as ref

    trained = request.getfixturevalue(f"{domain}_trained")
    scorer = _scorer(trained)
    for record in _records(trained, domain, 150):
        scored = scorer.score_columns(columns_of_record(record))
        contrib, x = scored.contributions[0], scored.X[0]
        expected = ref.explanation(scorer.builder, contrib, record, x)
        assert ref.same(scorer.explanation(contrib, record, x=x), expected), record
        assert ref.same(scorer.explanation(contrib, record, x=None), expected)  # x from the record
        assert ref.same(
            scorer.explanation(contrib, record, top=4, x=x),
            ref.explanation(scorer.builder, contrib, record, x, top=4),
        )
        assert scorer.top_reasons(contrib, record, x) == ref.top_reasons(scorer.builder, contrib, record, x)


@pytest.mark.parametrize("domain", ["cargo", "passenger"])
@pytest.mark.parametrize("n", [40, 300])  # a few records, and more than the small-batch threshold
def test_explanations_of_a_batch_equal_one_explanation_at_a_time(domain, n, request):
    from features.common import SMALL
    from models.scoring import records_to_columns
    from tests.models import reference_explanation as ref

    assert 40 < SMALL < 300
    trained = request.getfixturevalue(f"{domain}_trained")
    scorer = _scorer(trained)
    records = _records(trained, domain, n)
    scored = scorer.score_columns(records_to_columns(records))
    batch = scorer.explanations(scored, records)
    one_by_one = [scorer.explanation(scored.contributions[i], records[i], x=scored.X[i]) for i in range(n)]
    assert ref.same(batch, one_by_one)
    reference = [
        ref.explanation(scorer.builder, scored.contributions[i], records[i], scored.X[i]) for i in range(n)
    ]
    assert ref.same(batch, reference)
    assert scorer.explanations(scored, []) == []


@pytest.mark.parametrize("domain", ["cargo", "passenger"])
def test_top_reason_columns_equal_each_rows_top_reasons_on_a_file_frame(domain, request):
    """As ``borderrisk score`` words a validated chunk: from the frame's columns, where a missing
    text is NaN (not None) in the row a file's ``to_dict("records")`` gives."""
    from features.frames import input_schema, validate
    from tests.models import reference_explanation as ref

    trained = request.getfixturevalue(f"{domain}_trained")
    scorer = _scorer(trained)
    frame = validate(trained.later.head(2500), input_schema(domain))
    cols = scorer.builder.prepare({c: frame[c] for c in frame.columns})
    scored = scorer.score_columns(cols)
    columns = scorer.top_reason_columns(scored, cols, k=3)
    rows = frame.to_dict("records")
    for i in range(len(frame)):
        got = [columns[k][i] for k in range(3)]
        assert got == ref.top_reasons(scorer.builder, scored.contributions[i], rows[i], scored.X[i]), i
    assert [c[:50] for c in scorer.top_reason_columns(scored, cols, k=60)[:3]] == [c[:50] for c in columns]
    assert scorer.top_reason_columns(scored, cols, k=60)[-1] == [None] * len(frame)  # fewer features than k


def test_top_k_order_equals_a_full_stable_sort():
    from models.scoring import top_k_order

    rng = np.random.default_rng(7)
    for n, width in ((5, 4), (63, 10), (500, 54), (2000, 21)):
        m = np.round(rng.normal(size=(n, width)), 1)  # many ties
        m[::3, : width // 2] = 0.0
        m[1::7, 1] = -0.0
        m[2::11, 3 % width] = np.nan
        m[5::13] = m[5::13, :1]  # whole rows of one value
        for k in (1, 2, 3, 5, width, width + 2):
            expected = np.argsort(-np.abs(m), axis=1, kind="stable")[:, :k]
            np.testing.assert_array_equal(top_k_order(m, k), expected)


def test_remembered_words_do_not_mix_values_that_are_equal_but_read_differently():
    from features.builder import REMEMBERED, Reason

    reason = Reason(("a",), lambda a: f"importer {a}", by_fields=True)
    lowers = [
        reason.directed(1)[0],
        reason.directed(1.0)[0],
        reason.directed("1")[0],
        reason.directed(True)[0],
    ]
    assert lowers == [
        "importer 1 (lowers risk)",
        "importer 1.0 (lowers risk)",
        "importer 1 (lowers risk)",
        "importer True (lowers risk)",
    ]
    assert reason.directed("1")[1] == "importer 1 (raises risk)"
    pair = Reason(("a", "b"), lambda a, b: f"{a} × {b}", by_fields=True)
    assert pair.directed(("1", None))[0] == "1 × None (lowers risk)"
    assert pair.directed((1, "x"))[1] == "1 × x (raises risk)"
    assert list(pair._memory) == [("1", None)]  # only str / None keys are remembered
    for i in range(REMEMBERED + 10):  # bounded: it starts afresh
        reason.directed(str(i))
    assert len(reason._memory) <= REMEMBERED


@pytest.mark.parametrize("domain", ["cargo", "passenger"])
@pytest.mark.parametrize("worded", [0, 5, 12, 500])
def test_a_compact_explanation_is_the_full_one_with_only_the_largest_worded(domain, worded, request):
    """The batch endpoint's ``explanation=compact``: the first ``worded`` items of the full explanation
    as they are, and every other feature's exact contribution by name, in the same order."""
    from models.scoring import records_to_columns
    from tests.models import reference_explanation as ref

    trained = request.getfixturevalue(f"{domain}_trained")
    scorer = _scorer(trained)
    records = _records(trained, domain, 80)
    scored = scorer.score_columns(records_to_columns(records))
    full = scorer.explanations(scored, records)
    compact = scorer.explanations(scored, records, worded=worded)
    n_features = len(scorer.builder.feature_names)
    for f, c, contrib in zip(full, compact, scored.contributions, strict=True):
        k = min(worded, n_features)
        assert ref.same(c["contributions"], f["contributions"][:k])
        rest = f["contributions"][k:]
        assert c["remaining"] == {
            "features": [item["feature"] for item in rest],
            "contributions": [item["contribution"] for item in rest],
        }
        assert c["base_value"] == f["base_value"] and c["unit"] == "log-odds"
        everything = [item["contribution"] for item in c["contributions"]] + c["remaining"]["contributions"]
        assert c["base_value"] + sum(everything) == pytest.approx(contrib.sum(), abs=1e-9)
    assert scorer.explanations(scored, [], worded=worded) == []
