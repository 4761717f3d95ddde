"""The ``borderrisk`` command line.

Commands live in ``borderrisk.commands``, one module per area. Heavy libraries (LightGBM, MLflow,
pandas) are imported inside the commands, so ``--help`` is quick.
"""

from __future__ import annotations

from borderrisk.commands import (  # noqa: F401 - registers the commands
    admin,
    data,
    files,
    history,
    oversight,
    promote,
    serve,
    train,
)
from borderrisk.commands.common import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
