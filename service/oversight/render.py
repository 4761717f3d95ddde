"""Jinja2 templates of the oversight pages (server-rendered, no JavaScript) and PDF printing.

The same templates serve the web pages and the files the command line writes
(``borderrisk report proportionality --out report.html``): every page is self-contained — styles
inline, charts inline SVG — so a saved page is a complete document.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

#: Headless chromium on a machine without a display or network: no sandbox (root in containers), no
#: GPU, and none of the background connections a closed network would refuse.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{100 * float(value):.{digits}f} %"


def _num(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "–" if value is None else str(value)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters |= {"pct": _pct, "num": _num, "when": _when}
    return env


def render(name: str, **context: Any) -> str:
    context.setdefault("now", datetime.now().astimezone())
    return environment().get_template(name).render(**context)


class PdfUnavailable(RuntimeError):
    """No headless browser to print with."""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def html_to_pdf(html: str, timeout: float = 60.0) -> bytes:
    """Print a self-contained page to PDF with headless Chromium (Debian's ``chromium`` package)."""
    browser = chromium()
    if browser is None:
        raise PdfUnavailable("PDF export needs chromium on the PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="borderrisk-pdf-") as tmp:
        page, out = Path(tmp) / "page.html", Path(tmp) / "page.pdf"
        page.write_text(html, encoding="utf-8")
        args = [
            browser,
            *CHROMIUM_ARGS,
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        try:
            subprocess.run(args, check=True, capture_output=True, timeout=timeout)
        except (subprocess.SubprocessError, OSError) as exc:
            raise PdfUnavailable(f"chromium could not print the page: {exc}") from None
        if not out.is_file() or out.stat().st_size == 0:
            raise PdfUnavailable("chromium wrote no PDF")
        return out.read_bytes()
