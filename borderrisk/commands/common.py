"""What every command shares: the Typer app, the console, clear failures, file reading."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(
    name="borderrisk",
    help="Risk screening of cargo declarations and passenger records (decision support only).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True, soft_wrap=True)  # long paths and messages stay whole (greppable)


class DomainArg(StrEnum):
    cargo = "cargo"
    passenger = "passenger"


def fail(message: str) -> NoReturn:
    """Print a clear error naming what is wrong and exit with status 2."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def read_frame(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        fail(f"--data {path}: no such file")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    fail(f"--data {path}: expected a .parquet or .csv file")
