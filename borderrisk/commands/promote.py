"""Promotion: the challenger becomes champion only if it is no worse at the operating point."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer

from borderrisk.commands.common import DomainArg, app, console, fail
from borderrisk.settings import get_settings


@app.command()
def promote(
    domain: DomainArg,
    reason: Annotated[str, typer.Option("--reason", help="why this model should serve (recorded)")],
    by: Annotated[str | None, typer.Option("--by", help="who promotes (default: the OS user)")] = None,
    eval_data: Annotated[
        Path | None,
        typer.Option(
            "--eval-data", help="labelled file to compare on (default: the challenger's validation period)"
        ),
    ] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="YAML mapping of --eval-data")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="promote even if the gate refuses (needs --reason)")
    ] = False,
) -> None:
    """Move `champion` to the challenger if it is no worse than the champion on the same unseen rows:
    precision at the red share of the flow. Who, why and the comparison are recorded in MLflow."""
    from training.dataload import DataFileError
    from training.evaluation import GateError
    from training.evaluation import promote as run_gate
    from training.mapping import MappingError
    from training.registry import RegistryError

    if mapping is not None and eval_data is None:
        fail("--mapping applies to --eval-data; give the file too")
    settings = get_settings()
    who = by or getpass.getuser()
    with console.status("comparing challenger and champion"):
        try:
            comparison, chall, promoted = run_gate(
                settings,
                domain.value,
                reason=reason,
                by=who,
                eval_data=eval_data,
                mapping_path=mapping,
                force=force,
            )
        except (GateError, MappingError, DataFileError, RegistryError) as exc:
            fail(str(exc))
    if comparison is not None:
        a, b = comparison.challenger, comparison.champion
        console.print(
            f"compared on {comparison.rows:,} inspected rows ({comparison.positives:,} findings): "
            f"{comparison.source}"
        )
        for what, n in comparison.left_out.items():
            if n:
                console.print(f"  left out: {n:,} {what}")
        console.print(
            f"  precision at {comparison.rate:.0%} (red share): challenger v{a['version']} "
            f"{a['precision_at_red_share']:.4f}  vs  champion v{b['version']} "
            f"{b['precision_at_red_share']:.4f}"
        )
        console.print(f"  ROC-AUC: {a['roc_auc']:.4f} vs {b['roc_auc']:.4f}")
        for note in comparison.notes:
            console.print(f"  note: {note}")
    if promoted:
        forced = " (forced)" if comparison is None or not comparison.passed else ""
        console.print(f"[bold green]champion → {chall.name} v{chall.version}{forced}[/], by {who}: {reason}")
        return
    typer.echo(json.dumps(comparison.as_dict() if comparison else {}, indent=1), err=True)
    console.print(
        f"[bold red]refused:[/] the challenger v{chall.version} is worse than the champion at the red share; "
        "champion unchanged (use --force with a reason to override; the refusal is recorded)"
    )
    raise typer.Exit(code=1)
