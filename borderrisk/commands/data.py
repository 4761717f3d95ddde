"""Synthetic demo history."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from borderrisk.commands.common import DomainArg, app, console, fail


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
        fail(f"--start {start!r}: expected YYYY-MM-DD")
    with console.status(f"generating {rows:,} {domain.value} rows"):
        if domain is DomainArg.cargo:
            if targeting_bias:
                fail("--targeting-bias applies to the passenger domain only")
            df = generate_cargo(rows, seed, start=first, days=days, random_share=random_share)
        else:
            df = generate_passenger(
                rows, seed, start=first, days=days, random_share=random_share, targeting_bias=targeting_bias
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out, index=False)
    inspected = int(df["inspected"].sum())
    console.print(f"wrote {out}: {len(df):,} rows, {inspected:,} inspected")
