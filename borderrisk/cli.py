"""The ``borderrisk`` command line.

Commands live in ``borderrisk.commands``, one module per area. Heavy libraries (LightGBM, MLflow,
pandas) are imported inside the commands, so ``--help`` is quick.
"""

from __future__ import annotations

from borderrisk.commands import admin, data, history, serve, train  # noqa: F401 - registers the commands
from borderrisk.commands.common import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
