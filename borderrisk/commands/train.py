"""Training and the model registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from borderrisk.commands.common import DomainArg, app, console, fail, read_frame
from borderrisk.settings import get_settings


@app.command()
def train(
    domain: DomainArg,
    data: Annotated[Path, typer.Option("--data", help="history file (.parquet or .csv)")],
    seed: Annotated[int, typer.Option(help="training seed")] = 42,
) -> None:
    """Train a model on an inspection history, log it to MLflow and register it."""
    import hashlib

    import pandas as pd
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from features.frames import FrameValidationError
    from training.pipeline import TrainConfig
    from training.pipeline import train as run_training
    from training.registry import log_and_register

    settings = get_settings()
    config = TrainConfig(domain=domain.value, seed=seed)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("reading history", total=None)
        df = read_frame(data)
        fingerprint = hashlib.sha256(data.read_bytes()).hexdigest()
        bar.update(task, description=f"training {domain.value} model on {len(df):,} rows")
        try:
            result = run_training(df, config, data_fingerprint=fingerprint)
        except FrameValidationError as exc:
            bar.stop()
            fail(str(exc))
        except ValueError as exc:
            bar.stop()
            fail(str(exc))
        bar.update(task, description="logging to MLflow and registering")
        builder = result.bundle.builder()
        example = pd.DataFrame(
            builder.transform({c: df[c].head(5) for c in df.columns}), columns=builder.feature_names
        )
        reg = log_and_register(
            settings,
            result.bundle,
            example,
            params={**result.params, **config.model_dump()},
            metrics=result.metrics,
            tags={"data_sha256": fingerprint, "data_file": data.name},
        )
    m = result.metrics
    console.print(
        f"registered [bold]{reg.name}[/] v{reg.version} (sha256 {reg.sha256[:12]}…): "
        f"ROC-AUC {m.get('valid_roc_auc', float('nan')):.3f}, "
        f"P@1% {m['valid_precision_at_1pct']:.3f}, P@5% {m['valid_precision_at_5pct']:.3f}, "
        f"P@10% {m['valid_precision_at_10pct']:.3f} on the validation period"
    )


@app.command()
def models() -> None:
    """List registered model versions and their aliases."""
    from training.registry import list_versions

    settings = get_settings()
    rows = [v for d in ("cargo", "passenger") for v in list_versions(settings, d)]
    json.dump(rows, sys.stdout, indent=1)
    sys.stdout.write("\n")
