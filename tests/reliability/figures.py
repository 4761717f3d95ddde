"""Where the reliability tests leave their figures (requests sent, failures, decisions lost).

One JSON file, one section per test, updated in place: ``BORDERRISK_RELIABILITY_FIGURES`` or
``data/reliability-figures.json`` (``data/`` is the git-ignored data folder). RELIABILITY.md quotes it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def figures_path() -> Path:
    return Path(
        os.environ.get("BORDERRISK_RELIABILITY_FIGURES") or ROOT / "data" / "reliability-figures.json"
    )


def write_figures(section: str, figures: dict[str, Any]) -> Path:
    path = figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[section] = {**figures, "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path
