"""A small registry of its own for the analyst workflow: files, mappings, runs, promotion.

Two synthetic cargo histories of the same declarations: one with the true outcomes, one with the
outcomes shuffled among the inspected rows (a model trained on it is no better than chance). Both
are trained through ``training.run.train_file`` — the ``borderrisk train`` path — into a temporary
data folder: the shuffled one first (so it is the champion), then the real one (the challenger).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from borderrisk.settings import Settings
from tests.conftest import TEST_SECRET
from training.pipeline import TrainConfig

ROWS = 12_000
DAYS = 150
#: few trees: enough to rank, quick to train and log
SMALL = {"max_rounds": 80, "early_stopping_rounds": 20}


@dataclass
class SmallRegistry:
    settings: Settings
    good: Path  # history with the true outcomes
    shuffled: Path  # same declarations, outcomes shuffled among inspected rows
    later: pd.DataFrame  # declarations after both histories, with outcomes
    versions: dict[str, str]  # "shuffled" / "good" -> registered version
    run_dirs: dict[str, Path]  # <data>/runs/<run_id> of each


def small_config(**kw) -> TrainConfig:
    return TrainConfig(domain="cargo", seed=5, **(SMALL | kw))


@pytest.fixture(scope="session")
def small_history() -> tuple[pd.DataFrame, pd.DataFrame]:
    from training.synth import generate_cargo

    df = generate_cargo(ROWS, seed=11, days=DAYS, random_share=0.08)  # enough random inspections to measure
    cut = df["declared_at"].min() + np.timedelta64(120, "D")
    return df[df["declared_at"] < cut].reset_index(drop=True), df[df["declared_at"] >= cut].reset_index(
        drop=True
    )


@pytest.fixture(scope="session")
def small_registry(tmp_path_factory: pytest.TempPathFactory, small_history) -> SmallRegistry:
    from training.run import train_file

    history, later = small_history
    folder = tmp_path_factory.mktemp("analyst")
    settings = Settings(data_dir=folder / "data", env="test", session_secret=TEST_SECRET)
    good = folder / "good.parquet"
    history.to_parquet(good, index=False)
    shuffled = history.copy()
    inspected = shuffled.index[shuffled["inspected"]]
    rng = np.random.default_rng(0)
    shuffled.loc[inspected, "fraud"] = rng.permutation(shuffled.loc[inspected, "fraud"].to_numpy())
    shuffled_path = folder / "shuffled.parquet"
    shuffled.to_parquet(shuffled_path, index=False)
    versions, run_dirs = {}, {}
    for name, path in (("shuffled", shuffled_path), ("good", good)):
        outcome = train_file(settings, "cargo", path, None, small_config(), report=name == "good")
        versions[name] = outcome.registered.version
        run_dirs[name] = outcome.run_dir
    return SmallRegistry(settings, good, shuffled_path, later, versions, run_dirs)
