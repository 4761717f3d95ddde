"""Charts as inline SVG: no JavaScript, no image files, readable on a laptop screen and in print.

Each function returns a complete ``<svg>`` element (escaped text, fixed viewBox that scales to the
page width) with a ``<title>`` for screen readers and a ``data-chart`` attribute tests can find.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

RAISES = "#c0392b"  # red: raises risk / above bound
LOWERS = "#2471a3"  # blue: lowers risk
NEUTRAL = "#7f8c8d"
REFERENCE = "#95a5a6"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


@dataclass(frozen=True)
class Step:
    label: str
    contribution: float


def _fmt(v: float) -> str:
    return f"{v:+.2f}"


def _ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step) + 1)]


def waterfall(
    base: float, steps: Sequence[Step], *, top: int = 12, title: str = "How each input moved the score"
) -> str:
    """SHAP waterfall: from the expected log-odds (base value) through each feature's contribution
    to this decision's log-odds; the smallest contributions are summed in one row."""
    ordered = sorted(steps, key=lambda s: -abs(s.contribution))
    shown = list(ordered[:top])
    rest = ordered[top:]
    if rest:
        shown.append(Step(f"{len(rest)} other inputs together", sum(s.contribution for s in rest)))
    final = base + sum(s.contribution for s in steps)
    points = [base]
    for s in shown:
        points.append(points[-1] + s.contribution)
    lo, hi = min(points), max(points)
    pad = max((hi - lo) * 0.08, 0.25)
    lo, hi = lo - pad, hi + pad
    label_w, bar_w, row_h, top_pad = 360, 560, 30, 40
    width = label_w + bar_w + 90
    height = top_pad + row_h * (len(shown) + 2) + 40

    def x(v: float) -> float:
        return label_w + (v - lo) / (hi - lo) * bar_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width:{width}px;{FONT}" role="img" aria-labelledby="wf-title" data-chart="waterfall" '
        f'id="waterfall"><title id="wf-title">{escape(title)}</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
    ]
    axis_y = height - 30
    for t in _ticks(lo, hi):
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{top_pad - 10}" x2="{x(t):.1f}" y2="{axis_y}" stroke="#eee"/>'
            f'<text x="{x(t):.1f}" y="{axis_y + 16}" font-size="12" text-anchor="middle" '
            f'fill="#555">{t:g}</text>'
        )
    parts.append(
        f'<text x="{label_w + bar_w / 2:.0f}" y="{top_pad - 20}" font-size="13" text-anchor="middle" '
        f'fill="#333">log-odds of a finding (right: more risk)</text>'
    )

    def row(i: int, label: str, v0: float, v1: float, color: str, text: str, bold: bool = False) -> None:
        y = top_pad + i * row_h
        weight = ' font-weight="600"' if bold else ""
        parts.append(
            f'<text x="{label_w - 10}" y="{y + 19}" font-size="13" text-anchor="end" fill="#222"'
            f"{weight}>{escape(label)}</text>"
        )
        left, right = sorted((x(v0), x(v1)))
        parts.append(
            f'<rect x="{left:.1f}" y="{y + 5}" width="{max(right - left, 2):.1f}" height="{row_h - 10}" '
            f'fill="{color}" rx="2"/>'
        )
        parts.append(
            f'<text x="{right + 6:.1f}" y="{y + 19}" font-size="12" fill="#222">{escape(text)}</text>'
        )

    row(0, "expected value (all declarations)", base, base, NEUTRAL, f"{base:.2f}", bold=True)
    for i, s in enumerate(shown, start=1):
        v0 = points[i - 1]
        color = RAISES if s.contribution > 0 else LOWERS
        row(i, s.label, v0, v0 + s.contribution, color, _fmt(s.contribution))
        parts.append(
            f'<line x1="{x(v0 + s.contribution):.1f}" y1="{top_pad + i * row_h + row_h - 5}" '
            f'x2="{x(v0 + s.contribution):.1f}" y2="{top_pad + (i + 1) * row_h + 5}" stroke="#999" '
            f'stroke-dasharray="2,2"/>'
        )
    row(len(shown) + 1, "this decision", final, final, "#222", f"{final:.2f}", bold=True)
    parts.append(
        f'<line x1="{x(base):.1f}" y1="{top_pad}" x2="{x(base):.1f}" y2="{axis_y}" stroke="#555" '
        f'stroke-width="1"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    flagged: bool = False
    note: str = ""


def ratio_bars(
    bars: Sequence[Bar], *, bound: float, title: str, chart_id: str, unit_label: str = "× overall rate"
) -> str:
    """Horizontal bars of group rates relative to the overall rate (1 = same), with the bounds."""
    values = [b.value for b in bars if b.value is not None and math.isfinite(b.value)]
    hi = max([bound * 1.15, *values, 1.0]) * 1.08
    label_w, bar_w, row_h, top_pad = 200, 520, 24, 34
    width = label_w + bar_w + 150
    height = top_pad + row_h * max(len(bars), 1) + 36

    def x(v: float) -> float:
        return label_w + v / hi * bar_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'style="max-width:{width}px;{FONT}" role="img" aria-label="{escape(title)}" '
        f'data-chart="{escape(chart_id)}"><title>{escape(title)}</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{label_w}" y="18" font-size="13" fill="#333">{escape(title)}</text>',
    ]
    axis_y = top_pad + row_h * max(len(bars), 1)
    for t in _ticks(0, hi, 5):
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{top_pad - 4}" x2="{x(t):.1f}" y2="{axis_y}" stroke="#f0f0f0"/>'
            f'<text x="{x(t):.1f}" y="{axis_y + 15}" font-size="11" text-anchor="middle" fill="#666">'
            f"{t:g}</text>"
        )
    for i, b in enumerate(bars):
        y = top_pad + i * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" font-size="12" text-anchor="end" fill="#222">'
            f"{escape(b.label)}</text>"
        )
        if b.value is None or not math.isfinite(b.value):
            parts.append(
                f'<text x="{label_w + 4}" y="{y + 16}" font-size="11" fill="#888">'
                f"{escape(b.note or 'too few to measure')}</text>"
            )
            continue
        color = RAISES if b.flagged else "#5d6d7e"
        parts.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{max(x(b.value) - label_w, 1):.1f}" '
            f'height="{row_h - 8}" fill="{color}" rx="2"/>'
            f'<text x="{x(b.value) + 5:.1f}" y="{y + 16}" font-size="11" fill="#222">'
            f"{b.value:.2f}{' ⚑' if b.flagged else ''}{escape(' ' + b.note if b.note else '')}</text>"
        )
    for v, dash in ((1.0, ""), (bound, "5,3"), (1 / bound, "5,3")):
        parts.append(
            f'<line x1="{x(v):.1f}" y1="{top_pad - 6}" x2="{x(v):.1f}" y2="{axis_y}" stroke="#333" '
            f'stroke-width="{1.5 if not dash else 1}" stroke-dasharray="{dash}"/>'
        )
    parts.append(
        f'<text x="{label_w + bar_w / 2:.0f}" y="{height - 4}" font-size="11" text-anchor="middle" '
        f'fill="#555">{escape(unit_label)} — solid line 1, dashed lines 1/{bound:g} and {bound:g}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def share_bars(
    labels: Sequence[str],
    reference: Sequence[float],
    observed: Sequence[float],
    *,
    title: str,
    chart_id: str,
) -> str:
    """Grouped vertical bars: the reference (validation-period) share and the observed share per bin."""
    n = max(len(labels), 1)
    hi = max([*reference, *observed, 0.01]) * 1.15
    left, plot_w, plot_h, top_pad = 50, max(60 * n, 420), 180, 30
    width, height = left + plot_w + 20, top_pad + plot_h + 70
    slot = plot_w / n

    def y(v: float) -> float:
        return top_pad + plot_h - v / hi * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height}" width="100%" '
        f'style="max-width:{width:.0f}px;{FONT}" role="img" aria-label="{escape(title)}" '
        f'data-chart="{escape(chart_id)}"><title>{escape(title)}</title>',
        f'<rect x="0" y="0" width="{width:.0f}" height="{height}" fill="#fff"/>',
        f'<text x="{left}" y="18" font-size="13" fill="#333">{escape(title)}</text>',
    ]
    for t in _ticks(0, hi, 4):
        parts.append(
            f'<line x1="{left}" y1="{y(t):.1f}" x2="{left + plot_w}" y2="{y(t):.1f}" stroke="#f0f0f0"/>'
            f'<text x="{left - 5}" y="{y(t) + 4:.1f}" font-size="11" text-anchor="end" fill="#666">'
            f"{t * 100:.0f}%</text>"
        )
    for i, label in enumerate(labels):
        x0 = left + i * slot
        bw = slot * 0.36
        for j, (v, color) in enumerate(((reference[i], REFERENCE), (observed[i], LOWERS))):
            bx = x0 + slot * 0.12 + j * bw
            parts.append(
                f'<rect x="{bx:.1f}" y="{y(v):.1f}" width="{bw:.1f}" height="{top_pad + plot_h - y(v):.1f}" '
                f'fill="{color}"/>'
            )
        parts.append(
            f'<text x="{x0 + slot / 2:.1f}" y="{top_pad + plot_h + 14}" font-size="10" '
            f'text-anchor="middle" fill="#444">{escape(label)}</text>'
        )
    ly = height - 22
    parts.append(
        f'<rect x="{left}" y="{ly}" width="12" height="12" fill="{REFERENCE}"/>'
        f'<text x="{left + 16}" y="{ly + 10}" font-size="11" fill="#333">validation period (training)</text>'
        f'<rect x="{left + 210}" y="{ly}" width="12" height="12" fill="{LOWERS}"/>'
        f'<text x="{left + 226}" y="{ly + 10}" font-size="11" fill="#333">this period</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
