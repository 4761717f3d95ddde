"""The ``borderrisk`` command line: generate, train, score, serve.

Heavy libraries (LightGBM, MLflow, pandas) are imported inside the commands, so ``--help`` is quick.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from borderrisk.settings import Settings, get_settings

app = typer.Typer(
    name="borderrisk",
    help="Risk screening of cargo declarations and passenger records (decision support only).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


class DomainArg(StrEnum):
    cargo = "cargo"
    passenger = "passenger"


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def _read_frame(path: Path):  # type: ignore[no-untyped-def]
    import pandas as pd

    if not path.is_file():
        _fail(f"--data {path}: no such file")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    _fail(f"--data {path}: expected a .parquet or .csv file")
    return None


@app.command()
def generate(
    domain: DomainArg,
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write")],
    rows: Annotated[int, typer.Option(min=100, help="number of declarations")] = 100_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same file)")] = 7,
    start: Annotated[str, typer.Option(help="first day, YYYY-MM-DD")] = "2024-01-01",
    days: Annotated[int, typer.Option(min=30, help="length of the history in days")] = 540,
    random_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="share inspected at random")] = 0.02,
    targeting_bias: Annotated[
        str | None, typer.Option(help="passenger only: a nationality the legacy targeting over-selects")
    ] = None,
) -> None:
    """Write a synthetic inspection history with planted risk mechanisms and selection bias."""
    from training.synth import generate_cargo, generate_passenger

    try:
        first = date.fromisoformat(start)
    except ValueError:
        _fail(f"--start {start!r}: expected YYYY-MM-DD")
        return
    with console.status(f"generating {rows:,} {domain.value} rows"):
        if domain is DomainArg.cargo:
            if targeting_bias:
                _fail("--targeting-bias applies to the passenger domain only")
            df = generate_cargo(rows, seed, start=first, days=days, random_share=random_share)
        else:
            df = generate_passenger(
                rows, seed, start=first, days=days, random_share=random_share, targeting_bias=targeting_bias
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out, index=False)
    inspected = int(df["inspected"].sum())
    console.print(f"wrote {out}: {len(df):,} rows, {inspected:,} inspected")


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
        df = _read_frame(data)
        fingerprint = hashlib.sha256(data.read_bytes()).hexdigest()
        bar.update(task, description=f"training {domain.value} model on {len(df):,} rows")
        try:
            result = run_training(df, config, data_fingerprint=fingerprint)
        except FrameValidationError as exc:
            bar.stop()
            _fail(str(exc))
            return
        except ValueError as exc:
            bar.stop()
            _fail(str(exc))
            return
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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default BORDERRISK_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default BORDERRISK_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
) -> None:
    """Start the scoring service (uvicorn)."""
    import uvicorn

    settings: Settings = get_settings()
    uvicorn.run(
        "service.main:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


if __name__ == "__main__":
    app()
