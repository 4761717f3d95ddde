"""Training and the model registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from borderrisk.commands.common import DomainArg, app, console, fail
from borderrisk.settings import get_settings


def print_problems(failures, excluded, limit: int = 25) -> None:  # type: ignore[no-untyped-def]
    """The failures of a file (every one is in the CSV) and the exclusions, as tables."""
    from rich.table import Table

    if excluded is not None and len(excluded):
        counts = excluded["reason"].value_counts()
        console.print(f"[yellow]{len(excluded):,} row(s) excluded on purpose by the mapping:[/]")
        for reason, n in counts.items():
            console.print(f"  {n:>8,}  {reason}")
    if failures is None or not len(failures):
        return
    summary = failures.groupby(["field", "check"], dropna=False).size().sort_values(ascending=False)
    table = Table(title=f"{len(failures):,} problem(s) by field and check", show_lines=False)
    for col in ("field", "check", "problems"):
        table.add_column(col)
    for (field, check), n in summary.items():
        table.add_row(str(field), str(check), f"{n:,}")
    console.print(table)
    rows = Table(title=f"first {min(limit, len(failures))} of {len(failures):,}")
    for col in ("row", "id", "field", "source_column", "check", "value"):
        rows.add_column(col)
    for r in failures.head(limit).itertuples(index=False):
        rows.add_row(*("" if v is None or v != v else str(v) for v in r))
    console.print(rows)


@app.command()
def train(
    domain: DomainArg,
    data: Annotated[Path, typer.Option("--data", help="history file (.parquet or .csv)")],
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping", help="YAML mapping of the file's columns to the schema (default: same names)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="training seed")] = 42,
    tune: Annotated[
        int,
        typer.Option("--tune", min=0, help="Optuna trials, searched inside the training period (0: none)"),
    ] = 0,
    random_weight: Annotated[
        float | None,
        typer.Option(
            "--random-weight",
            min=0.0,
            help="total weight of random inspections relative to targeted ones (default: unweighted)",
        ),
    ] = None,
    valid_fraction: Annotated[
        float, typer.Option(min=0.05, max=0.45, help="share of the history (the latest) that validates")
    ] = 0.2,
    report: Annotated[bool, typer.Option(help="write the HTML training report")] = True,
) -> None:
    """Train a model on an inspection history, log it to MLflow and register it as challenger."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from training.dataload import DataFileError
    from training.mapping import MappingError
    from training.pipeline import TrainConfig
    from training.run import TrainingRefused, train_file

    settings = get_settings()
    if random_weight is not None and random_weight <= 0:
        fail("--random-weight must be above 0")
    config = TrainConfig(
        domain=domain.value, seed=seed, random_weight_ratio=random_weight, valid_fraction=valid_fraction
    )
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("starting", total=None)
        try:
            outcome = train_file(
                settings,
                domain.value,
                data,
                mapping,
                config,
                tune_trials=tune,
                report=report,
                progress=lambda msg: bar.update(task, description=msg),
            )
        except TrainingRefused as exc:
            bar.stop()
            print_problems(exc.loaded.failures, exc.loaded.excluded)
            fail(
                f"{exc}.\n  every problem is listed in {exc.run_dir / 'validation_errors.csv'} "
                f"(report: {exc.run_dir / 'report.html'}; MLflow run {exc.run_id}, marked FAILED)"
            )
        except (MappingError, DataFileError) as exc:
            bar.stop()
            fail(str(exc))
        except ValueError as exc:
            bar.stop()
            fail(str(exc))
    loaded, reg, m = outcome.loaded, outcome.registered, outcome.result.metrics
    print_problems(None, loaded.excluded)
    s = loaded.summary()
    console.print(
        f"read {s['rows_read']:,} rows: {s['rows_valid']:,} used, "
        f"{s['rows_excluded']:,} excluded by the mapping"
    )
    console.print(
        f"registered [bold]{reg.name}[/] v{reg.version} as challenger"
        f"{' and champion (the first version)' if reg.version == '1' else ''} (model sha256 "
        f"{outcome.result.bundle.metadata['model_sha256'][:12]}…): "
        f"ROC-AUC {m.get('valid_roc_auc', float('nan')):.3f}, "
        f"P@1% {m['valid_precision_at_1pct']:.3f}, P@5% {m['valid_precision_at_5pct']:.3f}, "
        f"P@10% {m['valid_precision_at_10pct']:.3f} on the validation period"
    )
    if "valid_random_precision_at_5pct" in m:
        console.print(
            f"  random inspections only: ROC-AUC {m.get('valid_random_roc_auc', float('nan')):.3f}, "
            f"P@5% {m['valid_random_precision_at_5pct']:.3f}"
        )
    if outcome.result.tuning is not None:
        t = outcome.result.tuning
        console.print(
            f"  tuning: PR-AUC {t['default_value']:.4f} (defaults) → {t['best_value']:.4f}, "
            f"{t['best_params']}"
        )
    console.print(f"run folder: {outcome.run_dir}")


@app.command()
def models() -> None:
    """List registered model versions and their aliases."""
    from training.registry import list_versions

    settings = get_settings()
    rows = [v for d in ("cargo", "passenger") for v in list_versions(settings, d)]
    json.dump(rows, sys.stdout, indent=1)
    sys.stdout.write("\n")
