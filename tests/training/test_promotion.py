"""The promotion gate, the run records, and a model that is the same model every time."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from training.evaluation import GateError, compare, promote
from training.registry import CHALLENGER, CHAMPION, MODEL_SHA_TAG, client, resolve, version_info
from training.run import train_file

from .conftest import small_config


def test_promotion_accepts_a_better_challenger_and_refuses_a_worse_one(small_registry, tmp_path):
    reg = small_registry
    s = reg.settings
    assert resolve(s, "cargo", CHAMPION).version == reg.versions["shuffled"]
    assert resolve(s, "cargo", CHALLENGER).version == reg.versions["good"]

    # --eval-data: a later file is after both cut-offs, so both registered bundles score all of it
    later = tmp_path / "later.parquet"
    reg.later.to_parquet(later, index=False)
    on_later, _, _ = compare(s, "cargo", eval_data=later)
    assert (
        on_later.rows
        == int(reg.later["inspected"].sum())
        == on_later.challenger["rows_scored_after_its_cutoff"]
    )
    assert on_later.passed
    # rows inside both models' training periods cannot compare them honestly: refused, not guessed
    history, _ = small_history_of(reg)
    _, tags = version_info(s, "cargo", reg.versions["good"])
    old = tmp_path / "old.parquet"
    history[history["declared_at"] < pd.Timestamp(tags["validation_starts"])].to_parquet(old, index=False)
    with pytest.raises(GateError, match="unseen by both models"):
        compare(s, "cargo", eval_data=old)

    # the real model against the shuffled-outcome champion, on the challenger's validation period
    comparison, chall, promoted = promote(s, "cargo", reason="retrained on the real outcomes", by="analyst-a")
    assert promoted and comparison is not None and comparison.passed
    a, b = comparison.challenger, comparison.champion
    assert a["precision_at_red_share"] > b["precision_at_red_share"] + 0.1
    # both scored the same rows, each with the margin it gave them blind (its own validation period)
    assert comparison.rows == a["rows_from_its_validation"] == b["rows_from_its_validation"] >= 100
    assert resolve(s, "cargo", CHAMPION).version == reg.versions["good"]
    _, tags = version_info(s, "cargo", reg.versions["good"])
    assert tags["promoted_by"] == "analyst-a" and tags["promotion_reason"] == "retrained on the real outcomes"
    assert json.loads(tags["promotion_comparison"])["challenger_precision"] == a["precision_at_red_share"]
    assert tags["previous_champion"] == reg.versions["shuffled"]

    # a single stump on the same history: worse at the red share, refused; the champion stays
    stump = train_file(s, "cargo", reg.good, None, small_config(num_leaves=2, max_rounds=1), report=False)
    comparison, chall, promoted = promote(s, "cargo", reason="a simpler model", by="analyst-b")
    assert chall.version == stump.registered.version
    assert not promoted and not comparison.passed
    assert resolve(s, "cargo", CHAMPION).version == reg.versions["good"]
    _, tags = version_info(s, "cargo", stump.registered.version)
    assert "promotion_refused_at" in tags and "promoted_by" not in tags

    # forcing needs a reason, and is recorded as forced
    with pytest.raises(GateError, match="--reason"):
        promote(s, "cargo", reason=" ", by="analyst-b", force=True)
    _, _, promoted = promote(s, "cargo", reason="audit asked for the simple rule", by="lead", force=True)
    assert promoted and resolve(s, "cargo", CHAMPION).version == stump.registered.version
    assert version_info(s, "cargo", stump.registered.version)[1]["promotion_forced"] == "true"

    # the good history again, same seed: the same model (model.txt hash) as the first good run
    again = train_file(s, "cargo", reg.good, None, small_config(), report=False)
    _, first = version_info(s, "cargo", reg.versions["good"])
    _, second = version_info(s, "cargo", again.registered.version)
    assert second[MODEL_SHA_TAG] == first[MODEL_SHA_TAG] == again.result.bundle.metadata["model_sha256"]
    assert second["bundle_sha256"] != first["bundle_sha256"]  # the bundle records when it was made
    _, _, promoted = promote(s, "cargo", reason="back to the full model", by="analyst-a")
    assert promoted and resolve(s, "cargo", CHAMPION).version == again.registered.version

    # every attempt is an MLflow run with who, why and the outcome
    c = client(s)
    runs = c.search_runs(
        [c.get_experiment_by_name("borderrisk-cargo").experiment_id], "tags.kind = 'promotion'"
    )
    assert sorted(r.data.tags["outcome"] for r in runs) == ["forced", "promoted", "promoted", "refused"]
    assert {r.data.tags["promoted_by"] for r in runs} == {"analyst-a", "analyst-b", "lead"}


def small_history_of(reg):
    return pd.read_parquet(reg.good), None
