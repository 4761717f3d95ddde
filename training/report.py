"""Self-contained HTML reports of a training run, an evaluation, or a refused file.

One HTML file with everything inline (charts are base64 PNGs drawn with matplotlib; the SHAP summary
is shap's beeswarm of exact TreeSHAP values), so that it can be mailed, archived with the run in
MLflow and opened years later without a server: precision at each inspection budget, the PR curve,
the calibration plot, the month-by-month stability, the SHAP beeswarm of the top features, the data
summary, and the rows excluded by the mapping or refused by validation.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment

from training.metrics import (
    RATES,
    calibration_bins,
    monthly_metrics,
    precision_curve,
    ranking_metrics,
)

MAX_TABLE_ROWS = 500
SHAP_SAMPLE = 2000
CURVE_RATES = np.linspace(0.005, 0.30, 60)


@dataclass
class Section:
    title: str
    html: str


@dataclass
class Report:
    title: str
    facts: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)

    def add(self, title: str, body: str) -> None:
        self.sections.append(Section(title, body))

    def render(self) -> str:
        env = Environment(autoescape=True)
        template = env.from_string(_TEMPLATE)
        return template.render(
            title=self.title,
            facts=self.facts,
            sections=self.sections,
            made=datetime.now(UTC).isoformat(timespec="seconds"),
        )


# -- building blocks -------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="chart" src="data:image/png;base64,{data}">'


def _figure(width: float = 6.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


COUNT_NAMES = {"rows", "positives", "problems", "count", "months", "number", "best_iteration"}


def table_html(df: pd.DataFrame, *, max_rows: int = MAX_TABLE_ROWS, floats: str = "{:.3f}") -> str:
    if df.empty:
        return "<p class=muted>none</p>"
    shown = df.head(max_rows)

    def fmt(v: Any, count: bool) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return ""
        if isinstance(v, float | np.floating | int | np.integer) and not isinstance(v, bool):
            if count and float(v).is_integer():
                return f"{int(v):,}"
            if isinstance(v, float | np.floating):
                return floats.format(float(v))
        return str(v)

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(fmt(v, str(c) in COUNT_NAMES or str(row[0]) in COUNT_NAMES))}</td>"
            for c, v in zip(shown.columns, row, strict=True)
        )
        + "</tr>"
        for row in shown.itertuples(index=False)
    )
    more = (
        f"<p class=muted>showing {max_rows:,} of {len(df):,} rows; all are in the CSV next to this report</p>"
        if len(df) > max_rows
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def metrics_table(columns: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Metric rows × population columns (all inspected, random inspections…)."""
    names = ["rows", "positives", "roc_auc", "pr_auc"]
    for rate in RATES:
        pct = f"{rate * 100:g}"
        names += [f"precision_at_{pct}pct", f"recall_at_{pct}pct", f"revenue_at_{pct}pct"]
    names += ["brier", "ece"]
    rows = []
    for name in names:
        if not any(name in m for m in columns.values()):
            continue
        rows.append({"metric": name, **{k: m.get(name) for k, m in columns.items()}})
    return pd.DataFrame(rows)


def precision_chart(y: np.ndarray, score: np.ndarray, marks: dict[str, float] | None = None) -> str:
    fig, ax = _figure()
    prec = precision_curve(y, score, CURVE_RATES)
    ax.plot(CURVE_RATES * 100, prec, label="model", color="#b3261e")
    ax.axhline(float(np.mean(y)), color="#777", linestyle="--", label=f"base rate {np.mean(y):.3f}")
    for name, rate in (marks or {}).items():
        ax.axvline(rate * 100, color="#1f5fa8", linestyle=":", linewidth=1)
        ax.text(rate * 100, 0.55, f" {name}", color="#1f5fa8", fontsize=8)
    ax.set_xlabel("inspection rate (% of declarations, highest scores first)")
    ax.set_ylabel("precision (share with a finding)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def pr_chart(y: np.ndarray, score: np.ndarray) -> str:
    from sklearn.metrics import precision_recall_curve

    fig, ax = _figure(4.6, 3.6)
    if len(np.unique(y)) == 2:
        precision, recall, _ = precision_recall_curve(y, score)
        ax.plot(recall, precision, color="#b3261e")
    ax.axhline(float(np.mean(y)), color="#777", linestyle="--")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    return _png(fig)


def calibration_chart(y: np.ndarray, prob: np.ndarray) -> str:
    bins = calibration_bins(y, prob, bins=10)
    fig, ax = _figure(4.6, 3.6)
    ax.plot([0, 1], [0, 1], color="#777", linestyle="--", linewidth=1)
    ax.plot(bins["predicted"], bins["observed"], marker="o", color="#1f5fa8")
    ax.set_xlabel("predicted probability (decile mean)")
    ax.set_ylabel("observed rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    return _png(fig)


def monthly_chart(monthly: pd.DataFrame) -> str:
    fig, ax = _figure(6.0, 3.0)
    x = np.arange(len(monthly))
    for col, colour in (
        ("precision_at_5pct", "#b3261e"),
        ("precision_at_10pct", "#e8a33d"),
        ("roc_auc", "#1f5fa8"),
    ):
        if col in monthly:
            ax.plot(x, monthly[col], marker="o", label=col.replace("_", " "), color=colour)
    ax.set_xticks(x, monthly["month"], rotation=45, fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return _png(fig)


def shap_beeswarm(booster: Any, X: np.ndarray, feature_names: list[str], seed: int = 0) -> str:
    """shap's beeswarm of exact TreeSHAP values (LightGBM ``pred_contrib``) on a sample of rows."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import shap

    if len(X) > SHAP_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), SHAP_SAMPLE, replace=False))
        X = X[rows]
    contrib = np.asarray(booster.predict(X, pred_contrib=True, num_threads=1), dtype=np.float64)
    explanation = shap.Explanation(
        values=contrib[:, :-1], base_values=contrib[:, -1], data=X, feature_names=feature_names
    )
    plt.figure()
    shap.plots.beeswarm(explanation, max_display=15, show=False, plot_size=(7.5, 5.5))
    return _png(plt.gcf())


# -- reports -----------------------------------------------------------------------------------------


def model_sections(
    report: Report,
    *,
    y: np.ndarray,
    margin: np.ndarray,
    prob: np.ndarray,
    times: np.ndarray,
    revenue: np.ndarray | None,
    random_mask: np.ndarray | None,
    red_share: float | None,
    booster: Any,
    X: np.ndarray | None,
    feature_names: list[str],
    period: str,
) -> dict[str, float]:
    """Metrics, curves, calibration, monthly stability and SHAP of scored, labelled rows."""
    overall = ranking_metrics(y, margin, prob, revenue)
    columns = {"all inspected": overall}
    random_note = ""
    if random_mask is not None and random_mask.sum() >= 50 and y[random_mask].sum() > 0:
        columns["random inspections"] = ranking_metrics(
            y[random_mask], margin[random_mask], prob[random_mask]
        )
    elif random_mask is not None:
        random_note = (
            f"<p>random inspections in this period: {int(random_mask.sum()):,} "
            f"({int(y[random_mask].sum()):,} with a finding), too few for metrics of their own "
            "(at least 50, with a finding).</p>"
        )
    note = (
        "<p class=muted>Precision at <i>k</i> %: of the <i>k</i> % highest-scored inspected declarations, "
        "the share with a finding. Random inspections are the unbiased sample of the whole flow; "
        "targeted ones were chosen by earlier rules or officers, so their metrics flatter any model "
        "that learnt those rules.</p>"
    )
    report.add(
        f"Metrics — {period}", table_html(metrics_table(columns), floats="{:.4f}") + random_note + note
    )
    marks = {"red share": red_share} if red_share else None
    charts = (
        "<div class=row>"
        f"<figure>{precision_chart(y, margin, marks)}<figcaption>Precision at each inspection budget"
        "</figcaption></figure>"
        f"<figure>{pr_chart(y, margin)}<figcaption>Precision–recall curve</figcaption></figure>"
        f"<figure>{calibration_chart(y, prob)}<figcaption>Calibration (deciles of the predicted "
        "probability)</figcaption></figure></div>"
    )
    report.add("Curves", charts)
    monthly = monthly_metrics(times, y, margin, prob)
    cols = [
        c
        for c in (
            "month",
            "rows",
            "positives",
            "roc_auc",
            "pr_auc",
            "precision_at_1pct",
            "precision_at_5pct",
            "precision_at_10pct",
            "brier",
        )
        if c in monthly
    ]
    report.add(
        "Stability month by month",
        (monthly_chart(monthly) if len(monthly) else "")
        + table_html(monthly[cols] if len(monthly) else monthly),
    )
    if X is not None and len(X):
        try:
            report.add(
                "What drives the scores (SHAP)",
                shap_beeswarm(booster, X, feature_names)
                + "<p class=muted>Each dot is one declaration; its position is the feature's exact "
                "TreeSHAP contribution to the log-odds, its colour the feature's value (categories "
                "by code).</p>",
            )
        except Exception as exc:  # a report must not fail a run over a plot
            report.add(
                "What drives the scores (SHAP)", f"<p>SHAP plot unavailable: {html.escape(str(exc))}</p>"
            )
    return overall


def data_sections(report: Report, loaded: Any | None, frame: pd.DataFrame | None, time_field: str) -> None:
    """Data summary, exclusions and failures of a loaded file."""
    if loaded is not None:
        s = loaded.summary()
        summary = pd.DataFrame(
            [
                {"": "rows read", "count": s["rows_read"]},
                {"": "rows used", "count": s["rows_valid"]},
                {"": "rows excluded by the mapping", "count": s["rows_excluded"]},
                {"": "rows failing validation", "count": s["rows_failed"]},
            ]
        )
        report.add("Data", table_html(summary))
    if frame is not None and len(frame):
        label = "fraud" if "fraud" in frame else "finding" if "finding" in frame else None
        parts = {"period": f"{frame[time_field].min()} — {frame[time_field].max()}"}
        if "inspected" in frame:
            parts["inspected"] = f"{int(frame['inspected'].sum()):,} of {len(frame):,}"
            if label:
                y = frame.loc[frame["inspected"].astype(bool), label].astype("float64")
                parts["finding rate (inspected)"] = f"{y.mean():.3f}"
        if "selection" in frame:
            counts = frame["selection"].astype("str").value_counts()
            parts["selection"] = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        by_month = frame.groupby(frame[time_field].dt.strftime("%Y-%m")).size().rename("rows").reset_index()
        by_month.columns = ["month", "rows"]
        report.add(
            "Data summary",
            table_html(pd.DataFrame([{"": k, "value": v} for k, v in parts.items()])) + table_html(by_month),
        )
    if loaded is not None and not loaded.excluded.empty:
        counts = pd.DataFrame([{"reason": k, "rows": v} for k, v in loaded.exclusion_counts().items()])
        report.add("Rows excluded by the mapping", table_html(counts) + table_html(loaded.excluded))
    if loaded is not None and not loaded.failures.empty:
        f = loaded.failures
        counts = f.groupby(["field", "check"], dropna=False).size().rename("problems").reset_index()
        report.add("Rows that failed validation", table_html(counts) + table_html(f))


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: left; }
th { background: #f4f4f4; } .muted { color: #666; font-size: 0.85rem; }
.row { display: flex; flex-wrap: wrap; gap: 1rem; } figure { margin: 0; }
figcaption { font-size: 0.8rem; color: #555; } img { max-width: 100%; }
</style></head><body>
<h1>{{ title }}</h1>
<table>{% for k, v in facts.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}
<tr><th>report made</th><td>{{ made }}</td></tr></table>
{% for s in sections %}<h2>{{ s.title }}</h2>
{{ s.html | safe }}
{% endfor %}
</body></html>
"""
