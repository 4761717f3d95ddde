"""Files of declarations: score them with the champion, evaluate a model on a labelled one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from borderrisk.commands.common import DomainArg, app, console, fail
from borderrisk.settings import get_settings


def _ref(model_version: int | None) -> str:
    return str(model_version) if model_version is not None else "champion"


#: Options shared by ``score`` and ``evaluate``.
MappingOption = Annotated[Path | None, typer.Option("--mapping", help="YAML mapping of the file's columns")]
ModelVersionOption = Annotated[
    int | None, typer.Option("--model-version", min=1, help="registered version (default: champion)")
]


@app.command()
def score(
    domain: DomainArg,
    data: Annotated[Path, typer.Option("--data", help="declarations (.parquet or .csv)")],
    out: Annotated[Path, typer.Option("--out", help="scored parquet file to write")],
    mapping: MappingOption = None,
    model_version: ModelVersionOption = None,
    chunk_rows: Annotated[int, typer.Option(min=100, help="rows read and scored at a time")] = 50_000,
) -> None:
    """Score every row of a file: id, score, channel, top three reasons, other columns carried through."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from training.dataload import DataFileError, count_rows, resolve_mapping
    from training.evaluation import scorer_for
    from training.mapping import MappingError
    from training.registry import RegistryError, fetch_bundle
    from training.scorefile import score_file

    settings = get_settings()
    try:
        spec, _ = resolve_mapping(domain.value, data, mapping)
        bundle, reg = fetch_bundle(settings, domain.value, _ref(model_version))
    except (MappingError, DataFileError, RegistryError) as exc:
        fail(str(exc))
    scorer = scorer_for(settings, bundle, reg.version)
    total = count_rows(data)
    with Progress(
        TextColumn(f"scoring with {reg.name} v{reg.version}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("rows", total=total)
        started = time.perf_counter()
        try:
            result = score_file(
                scorer, data, out, spec, chunk_rows=chunk_rows, progress=lambda n: bar.advance(task, n)
            )
        except (MappingError, DataFileError) as exc:
            bar.stop()
            fail(str(exc))
    for old, new in result.renamed.items():
        console.print(f"[yellow]input column {old!r} is carried as {new!r} (its name is an output column)[/]")
    seconds = time.perf_counter() - started  # reading, scoring, explaining, writing: not start-up
    rate = result.rows_read / max(seconds, 1e-9)
    console.print(
        f"wrote {result.out}: {result.rows_scored:,} of {result.rows_read:,} rows scored "
        f"with {reg.name} v{reg.version} in {seconds:.1f} s ({rate:,.0f} rows/s)"
    )
    if result.rows_excluded:
        console.print(
            f"[yellow]{result.rows_excluded:,} row(s) excluded on purpose by the mapping: "
            f"{result.excluded_path}[/]"
        )
    if result.rows_failed or result.problems:
        console.print(
            f"[bold red]error:[/] {result.rows_failed:,} row(s) failed validation and were NOT scored "
            f"({result.problems:,} problem(s)); each is listed in {result.errors_path}"
        )
        raise typer.Exit(code=1)


@app.command()
def evaluate(
    domain: DomainArg,
    data: Annotated[Path, typer.Option("--data", help="labelled history (.parquet or .csv)")],
    mapping: MappingOption = None,
    model_version: ModelVersionOption = None,
    report: Annotated[Path | None, typer.Option("--report", help="write an HTML report here")] = None,
) -> None:
    """Metrics of a registered model on a labelled file (ROC-AUC, PR-AUC, precision at budgets…)."""
    from rich.table import Table

    from borderrisk.commands.train import print_problems
    from training.dataload import DataFileError
    from training.evaluation import evaluate_file, evaluation_report
    from training.mapping import MappingError
    from training.metrics import RATES
    from training.registry import RegistryError

    settings = get_settings()
    with console.status("reading, validating and scoring"):
        try:
            ev = evaluate_file(settings, domain.value, data, mapping, _ref(model_version))
        except (MappingError, DataFileError, RegistryError) as exc:
            fail(str(exc))
        except ValueError as exc:
            from training.dataload import load_file

            loaded = load_file(domain.value, data, mapping, labelled=True)
            print_problems(loaded.failures, loaded.excluded)
            fail(str(exc))
    print_problems(None, ev.loaded.excluded)
    table = Table(title=f"{ev.version.name} v{ev.version.version} on {data.name}")
    table.add_column("metric")
    table.add_column("all inspected", justify="right")
    if ev.random_metrics:
        table.add_column("random inspections", justify="right")
    names = ["rows", "positives", "roc_auc", "pr_auc"]
    for rate in RATES:
        pct = f"{rate * 100:g}"
        names += [f"precision_at_{pct}pct", f"recall_at_{pct}pct", f"revenue_at_{pct}pct"]
    names += ["brier", "ece"]
    for name in names:
        if name not in ev.metrics:
            continue
        count = name in ("rows", "positives")
        cells = [_fmt(ev.metrics[name], count)]
        if ev.random_metrics:
            cells.append(_fmt(ev.random_metrics.get(name), count))
        table.add_row(name, *cells)
    typer.echo("")
    console.print(table)
    monthly = Table(title="month by month")
    for col in ("month", "rows", "positives", "ROC-AUC", "P@5%", "P@10%", "Brier"):
        monthly.add_column(col, justify="right")
    for r in ev.monthly.itertuples(index=False):
        monthly.add_row(
            r.month,
            _fmt(r.rows, True),
            _fmt(r.positives, True),
            *(
                _fmt(getattr(r, c, None))
                for c in ("roc_auc", "precision_at_5pct", "precision_at_10pct", "brier")
            ),
        )
    console.print(monthly)
    if ev.rows_on_or_before_cutoff:
        console.print(
            f"[yellow]warning: {ev.rows_on_or_before_cutoff:,} row(s) are dated on or before the model's "
            f"cut-off ({ev.bundle.state.cutoff}): their outcomes may be in its entity histories, so these "
            "metrics flatter it[/]"
        )
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(evaluation_report(settings, ev), encoding="utf-8")
        console.print(f"report: {report}")


def _fmt(v: object, count: bool = False) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "—"
    if isinstance(v, int | float):
        return f"{v:,.0f}" if count else f"{v:.4f}"
    return str(v)
