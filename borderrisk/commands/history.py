"""``borderrisk export-history``: logged decisions and their outcomes, ready for ``borderrisk train``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from borderrisk.commands.admin import store_engine
from borderrisk.commands.common import DomainArg, app, console, fail


@app.command("export-history")
def export_history(
    domain: DomainArg,
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write")],
    since: Annotated[str | None, typer.Option(help="first day to export, YYYY-MM-DD (default: all)")] = None,
) -> None:
    """Export logged decisions with their outcomes and selection reason, in the training format."""
    from service.store import AuditStore
    from training.history_export import history_frame

    start = None
    if since is not None:
        try:
            start = datetime.fromisoformat(since).replace(tzinfo=UTC)
        except ValueError:
            fail(f"--since {since!r}: expected YYYY-MM-DD")
    store = AuditStore(store_engine())
    with console.status(f"reading {domain.value} decisions"):
        exported = history_frame(
            domain.value,
            store.iter_history(domain.value, start, include_personal=domain.value == "passenger"),
        )
    frame = exported.frame
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    inspected = int(frame["inspected"].sum())
    random = int((frame["selection"] == "random").sum())
    console.print(
        f"wrote {out}: {len(frame):,} decisions, {inspected:,} with an outcome "
        f"({random:,} random inspections)"
    )
    if exported.masked_skipped:
        console.print(
            f"[yellow]left out {exported.masked_skipped:,} passenger decisions whose personal fields "
            "were masked by retention (their model inputs are gone)[/]"
        )
