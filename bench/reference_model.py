"""Train and register a reference-size cargo model (400 trees × 63 leaves) with the project's own
pipeline, so the request-path benchmark can serve it through the whole service.

    python -m bench.reference_model --history data/bench/history/cargo.parquet

Registers into the registry of ``BORDERRISK_DATA_DIR`` (the benchmark gives it a folder of its own).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

#: The size of the in-process reference model; a learning rate slow enough that early stopping
#: keeps all 400 rounds on the demo history.
REFERENCE_CONFIG = {
    "num_leaves": 63,
    "max_rounds": 400,
    "early_stopping_rounds": 400,
    "learning_rate": 0.006,
    "min_data_in_leaf": 20,
}


def train_and_register(history: Path) -> str:
    """Train the reference cargo model on ``history`` and register it; returns its version."""
    from borderrisk.settings import Settings
    from training.pipeline import TrainConfig, train
    from training.registry import log_and_register

    df = pd.read_parquet(history)
    result = train(df, TrainConfig(domain="cargo", **REFERENCE_CONFIG))  # type: ignore[arg-type]
    bundle = result.bundle
    builder = bundle.builder()
    head = df.head(5)
    example = pd.DataFrame(
        builder.transform({c: head[c] for c in head.columns}), columns=builder.feature_names
    )
    return log_and_register(Settings(), bundle, example, result.params, result.metrics).version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=Path, required=True)
    print(train_and_register(parser.parse_args().history))


if __name__ == "__main__":
    main()
