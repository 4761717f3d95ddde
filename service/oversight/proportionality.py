"""Is selection proportionate? Selection, hit and false-positive rates per monitored group, the
value of the model against random selection, and drift from the training period.

The input is a frame of decisions (from the decision log, :func:`frame_from_log`, or from an
inspection-history file, :func:`frame_from_history`) with, per row: the group labels, whether it was
*selected* for inspection and why (``random`` draw, the model's ``risk`` channel, an ``officer``
override to red), the outcome if one was recorded, the score and the inputs watched for drift.

Definitions (also printed on the page):

* selection rate — selected / decisions;
* hit rate — findings / inspections with a recorded outcome;
* false-positive rate — selected without a finding / decisions without a finding, where decisions
  not inspected count as without a finding (unknowable, and at hit rates of a few per cent nearly
  always true); selected decisions still awaiting their outcome are left out.

Each group's rate is divided by the overall rate. A group with at least ``min_group`` decisions is
flagged when a ratio leaves ``[1/bound, bound]``; it is *disproportionate* when it is selected more
than ``bound`` × as often as overall while its hit rate is below the overall one — selected more
often than its findings justify.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from service.oversight.charts import Bar, ratio_bars, share_bars
from training.fairness import (
    DRIFT_INPUTS,
    GROUP_ATTRIBUTES,
    GROUP_LABELS,
    UNKNOWN,
    categorical_shares,
    group_columns,
    numeric_shares,
    psi,
)

SMALL = "other (smaller groups)"
PSI_MODERATE, PSI_MAJOR = 0.1, 0.25
Z_FLAG = 2.58


# ----------------------------------------------------------------------------- frames


def frame_from_log(
    store: Any, domain: str, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """Decisions of ``domain`` in ``[since, until)`` from the audit store, one row each."""
    spec = DRIFT_INPUTS[domain]
    wanted = (*spec["numeric"], *spec["categorical"], "country_of_origin", "departure_at")
    rows = []
    history = store.iter_history(domain, since, include_personal=domain == "passenger")
    try:
        for item in history:
            if until is not None and item["created_at"] >= until:
                break
            inputs = item["features"]
            personal = item.get("personal") or {}
            row = {k: inputs.get(k) for k in wanted if k in inputs}
            row |= {k: personal.get(k) for k in ("nationality", "sex", "birth_year")}
            final = item["final_channel"]
            selection = item["selection"]
            if selection == "random":
                reason = "random"
            elif final == "red":
                reason = "risk" if item["channel"] == "red" else "officer"
            else:
                reason = "none"
            row |= {
                "decision_id": item["decision_id"],
                "created_at": item["created_at"],
                "model_version": item["model_version"],
                "score": float(item["score"]),
                "reason": reason,
                "selected": reason != "none",
                "outcome": -1 if not item["has_outcome"] else int(bool(item["finding"])),
                "masked": domain == "passenger" and item.get("personal") is None,
            }
            rows.append(row)
    finally:
        history.close()
    return pd.DataFrame(rows)


def frame_from_history(df: pd.DataFrame, domain: str) -> pd.DataFrame:
    """An inspection-history file (the training format) as decisions: ``targeted`` rows count as
    selected on risk, ``random`` ones as random draws; the label is the outcome."""
    label = "fraud" if domain == "cargo" else "finding"
    time_field = "declared_at" if domain == "cargo" else "departure_at"
    reason = np.where(df["selection"] == "random", "random", np.where(df["inspected"], "risk", "none"))
    out = df.copy()
    out["created_at"] = pd.to_datetime(df[time_field])
    out["reason"] = reason
    out["selected"] = reason != "none"
    y = df[label].astype("Float64").fillna(-1).astype(int).to_numpy()
    out["outcome"] = np.where(df["inspected"].to_numpy(dtype=bool), y, -1)
    out["score"] = np.nan
    out["model_version"] = "history"
    out["masked"] = False
    return out


# ----------------------------------------------------------------------------- metrics


def _selection_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_pred)) if len(y_pred) else math.nan


def _hit_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    inspected = np.asarray(y_pred, dtype=bool) & (np.asarray(y_true) >= 0)
    n = int(inspected.sum())
    return float((np.asarray(y_true)[inspected] == 1).sum() / n) if n else math.nan


def _false_positive_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred, dtype=bool)
    negatives = (y_true == 0) | ((y_true == -1) & ~y_pred)
    n = int(negatives.sum())
    return float((negatives & y_pred).sum() / n) if n else math.nan


def _inspections(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float((np.asarray(y_pred, dtype=bool) & (np.asarray(y_true) >= 0)).sum())


def _count(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(len(y_true))


METRICS = {
    "decisions": _count,
    "selection_rate": _selection_rate,
    "inspections": _inspections,
    "hit_rate": _hit_rate,
    "false_positive_rate": _false_positive_rate,
}


def _ratio(value: float, overall: float) -> float | None:
    if value is None or overall is None or not math.isfinite(value) or not math.isfinite(overall):
        return None
    if overall == 0:
        return None
    return float(value / overall)


@dataclass
class GroupRow:
    group: str
    decisions: int
    selection_rate: float
    inspections: int
    hit_rate: float | None
    false_positive_rate: float | None
    ratios: dict[str, float | None]
    flags: list[str] = field(default_factory=list)
    disproportionate: bool = False
    small: bool = False


def _significant(rate: float, overall: float, n: float, z: float = Z_FLAG) -> bool:
    """Whether a group's rate differs from the overall rate by more than chance (normal
    approximation of the binomial; ``z`` 2.58 ≈ 1 % two-sided)."""
    if n <= 0 or not 0 < overall < 1 or not math.isfinite(rate):
        return False
    return abs(rate - overall) / math.sqrt(overall * (1 - overall) / n) >= z


def group_table(
    labels: np.ndarray,
    selected: np.ndarray,
    outcome: np.ndarray,
    *,
    bound: float,
    min_group: int,
    score: np.ndarray | None = None,
) -> tuple[list[GroupRow], dict[str, float]]:
    """Rows per group (fairlearn ``MetricFrame``), their ratios to the overall rates, and flags.

    A ratio is flagged only when it is outside the bound *and* the difference is beyond chance
    (:func:`_significant`); a hit rate counts only when at least 5 findings were to be expected.
    A group is *disproportionate* when it is selected more than ``bound`` × as often as overall by
    more than chance, and more than ``bound`` × as often as its risk explains — its risk being the
    model's mean score (relative to overall) when the decisions carry scores, else its hit rate.
    """
    labels = np.asarray(labels, dtype=object)
    known = labels != UNKNOWN
    counts = pd.Series(labels[known]).value_counts()
    big = set(counts[counts >= min_group].index)
    merged = np.array([v if v in big else SMALL for v in labels[known]], dtype=object)
    y_true = np.asarray(outcome)[known]
    y_pred = np.asarray(selected, dtype=bool)[known]
    frame = MetricFrame(
        metrics=METRICS, y_true=y_true, y_pred=y_pred, sensitive_features=pd.Series(merged, name="group")
    )
    overall = {k: float(v) for k, v in frame.overall.items()}
    mean_score: dict[str, float] = {}
    if score is not None and np.isfinite(np.asarray(score, dtype=np.float64)[known]).any():
        s = pd.Series(np.asarray(score, dtype=np.float64)[known])
        mean_score = s.groupby(merged).mean().to_dict()
        overall["mean_score"] = float(s.mean())
    rows = []
    for group, values in frame.by_group.iterrows():
        v = {k: float(x) for k, x in values.items()}
        enough = v["inspections"] * overall["hit_rate"] >= 5 if math.isfinite(overall["hit_rate"]) else False
        hit = v["hit_rate"] if enough else math.nan
        negatives = v["decisions"] - v["inspections"] * (v["hit_rate"] if math.isfinite(v["hit_rate"]) else 0)
        ratios = {
            "selection_rate": _ratio(v["selection_rate"], overall["selection_rate"]),
            "hit_rate": _ratio(hit, overall["hit_rate"]),
            "false_positive_rate": _ratio(v["false_positive_rate"], overall["false_positive_rate"]),
            "risk": _ratio(mean_score.get(str(group), math.nan), overall.get("mean_score", math.nan)),
        }
        row = GroupRow(
            group=str(group),
            decisions=int(v["decisions"]),
            selection_rate=v["selection_rate"],
            inspections=int(v["inspections"]),
            hit_rate=None if math.isnan(hit) else hit,
            false_positive_rate=None if math.isnan(v["false_positive_rate"]) else v["false_positive_rate"],
            ratios=ratios,
            small=group == SMALL,
        )
        if not row.small:
            sel, hr, fp = ratios["selection_rate"], ratios["hit_rate"], ratios["false_positive_rate"]
            sel_sig = _significant(v["selection_rate"], overall["selection_rate"], v["decisions"])
            if sel is not None and sel_sig and sel > bound:
                row.flags.append(f"selected {sel:.2f}× as often as overall")
            if sel is not None and sel_sig and sel < 1 / bound:
                row.flags.append(f"selected {sel:.2f}× as often as overall (less)")
            if hr is not None and hr < 1 / bound and _significant(hit, overall["hit_rate"], v["inspections"]):
                row.flags.append(f"findings per inspection {hr:.2f}× the overall hit rate")
            fp_sig = _significant(v["false_positive_rate"], overall["false_positive_rate"], negatives)
            if fp is not None and fp > bound and fp_sig:
                row.flags.append(f"people without a finding inspected {fp:.2f}× as often")
            justified = ratios["risk"] if ratios["risk"] is not None else hr
            if sel is not None and sel_sig and sel > bound and justified is not None:
                row.disproportionate = justified <= 0 or sel / justified > bound
                if row.disproportionate:
                    basis = "model risk" if ratios["risk"] is not None else "hit rate"
                    row.flags[0] = (
                        f"selected {sel:.2f}× as often as overall while its {basis} is {justified:.2f}×"
                    )
        rows.append(row)
    rows.sort(key=lambda r: (r.small, -r.decisions))
    return rows, overall


def reason_table(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Hit rates of random draws, model (risk) selections and officer overrides."""
    out = []
    names = {
        "random": "random draw",
        "risk": "risk model (red channel)",
        "officer": "officer override to red",
    }
    for reason, name in names.items():
        m = frame["reason"] == reason
        with_outcome = m & (frame["outcome"] >= 0)
        findings = int((frame.loc[with_outcome, "outcome"] == 1).sum())
        n_out = int(with_outcome.sum())
        out.append(
            {
                "reason": reason,
                "name": name,
                "selected": int(m.sum()),
                "inspections": n_out,
                "findings": findings,
                "hit_rate": findings / n_out if n_out else None,
            }
        )
    return out


# ----------------------------------------------------------------------------- drift


def _status(value: float) -> str:
    if value >= PSI_MAJOR:
        return "major shift"
    if value >= PSI_MODERATE:
        return "moderate shift"
    return "stable"


def score_drift(frame: pd.DataFrame, metadata: Mapping[str, Any], calibrate: Any) -> dict[str, Any] | None:
    """PSI of this period's scores against the validation-period score distribution of the bundle."""
    scores = frame["score"].to_numpy(dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    if not len(scores) or "margin_quantiles" not in metadata:
        return None
    grid = np.asarray(calibrate(np.asarray(metadata["margin_quantiles"], dtype=np.float64)))
    edges = np.unique(grid[np.linspace(0, len(grid) - 1, 11).astype(int)[1:-1]])
    reference = numeric_shares(grid, edges)
    observed = numeric_shares(scores, edges)
    value = psi(reference, observed)
    bounds = [f"{e:.3f}" for e in edges]
    labels = [
        f"<{bounds[0]}",
        *[f"{a}–{b}" for a, b in itertools.pairwise(bounds)],
        f"≥{bounds[-1]}",
    ]
    return {
        "psi": value,
        "status": _status(value),
        "flagged": value >= PSI_MAJOR,
        "rows": len(scores),
        "chart": share_bars(
            labels,
            reference,
            observed,
            title="Scores: share of decisions per score bin",
            chart_id="score-drift",
        ),
    }


def input_drift(frame: pd.DataFrame, reference: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for name, ref in reference.items():
        if name not in frame.columns:
            continue
        if ref["kind"] == "numeric":
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
            observed = numeric_shares(values, ref["edges"])
        else:
            observed = categorical_shares(frame[name].to_numpy(dtype=object), ref["categories"])
        value = psi(ref["shares"], observed)
        out.append(
            {
                "input": name,
                "kind": ref["kind"],
                "psi": value,
                "status": _status(value),
                "flagged": value >= PSI_MAJOR,
            }
        )
    return out


# ----------------------------------------------------------------------------- the report


def proportionality(
    frame: pd.DataFrame,
    domain: str,
    *,
    bound: float,
    min_group: int,
    bundle: Any = None,
    model_version: str | None = None,
) -> dict[str, Any]:
    """Everything the proportionality page shows, from a decisions frame. With a model ``bundle``,
    scores and inputs (of that ``model_version``'s decisions) are compared with its validation period."""
    report: dict[str, Any] = {
        "domain": domain,
        "bound": bound,
        "min_group": min_group,
        "decisions": len(frame),
        "attributes": [],
        "flagged": [],
        "reasons": [],
        "drift": None,
    }
    if frame.empty:
        return report
    masked = int(frame["masked"].sum()) if "masked" in frame else 0
    report["masked"] = masked
    report["selected"] = int(frame["selected"].sum())
    report["selection_rate"] = float(frame["selected"].mean())
    years = None
    if domain == "passenger":
        when = frame["departure_at"] if "departure_at" in frame else frame["created_at"]
        years = pd.to_datetime(pd.Series(when), utc=True, format="mixed").dt.year.to_numpy()
    cols = {c: frame[c].to_numpy(dtype=object) for c in frame.columns}
    groups = group_columns(domain, cols, years=years)
    selected = frame["selected"].to_numpy(dtype=bool)
    outcome = frame["outcome"].to_numpy(dtype=np.int64)
    score = frame["score"].to_numpy(dtype=np.float64)
    for attribute in GROUP_ATTRIBUTES[domain]:
        labels = groups[attribute]
        known = int((labels != UNKNOWN).sum())
        rows, overall = (
            group_table(labels, selected, outcome, bound=bound, min_group=min_group, score=score)
            if known
            else ([], {})
        )
        charts = {}
        if rows:
            shown = [r for r in rows if not r.small][:20]
            charts["selection"] = ratio_bars(
                [
                    Bar(r.group, r.ratios["selection_rate"], any(f.startswith("selected") for f in r.flags))
                    for r in shown
                ],
                bound=bound,
                title=f"Selection rate by {GROUP_LABELS[attribute]}, relative to overall",
                chart_id=f"selection-{attribute}",
            )
            measured = [r for r in shown if r.ratios["hit_rate"] is not None]
            if measured:
                charts["hit"] = ratio_bars(
                    [
                        Bar(r.group, r.ratios["hit_rate"], any(f.startswith("findings") for f in r.flags))
                        for r in measured
                    ],
                    bound=bound,
                    title=f"Hit rate (findings per inspection) by {GROUP_LABELS[attribute]}, "
                    "relative to overall (groups with enough inspections)",
                    chart_id=f"hit-{attribute}",
                )
        report["attributes"].append(
            {
                "attribute": attribute,
                "label": GROUP_LABELS[attribute],
                "known": known,
                "overall": overall,
                "rows": rows,
                "charts": charts,
            }
        )
        for r in rows:
            if r.flags:
                report["flagged"].append(
                    {
                        "attribute": GROUP_LABELS[attribute],
                        "group": r.group,
                        "flags": r.flags,
                        "disproportionate": r.disproportionate,
                    }
                )
    report["flagged"].sort(key=lambda f: (not f["disproportionate"], f["attribute"], f["group"]))
    report["reasons"] = reason_table(frame)
    random_hit = report["reasons"][0]["hit_rate"]
    model_hit = report["reasons"][1]["hit_rate"]
    report["lift"] = model_hit / random_hit if random_hit and model_hit is not None else None
    if bundle is not None:
        meta = bundle.metadata
        same = frame
        if model_version is not None and (frame["model_version"].astype(str) == model_version).any():
            same = frame[frame["model_version"].astype(str) == model_version]
        report["drift"] = {
            "version": model_version,
            "rows": len(same),
            "model": f"{meta.get('name')} (validation period {meta['validation_period']['start'][:10]} – "
            f"{meta['validation_period']['end'][:10]})",
            "score": score_drift(same, meta, bundle.calibrator.apply),
            "inputs": input_drift(same, meta.get("drift_reference", {})),
            "has_reference": "drift_reference" in meta,
        }
    return report


def iter_flags(report: Mapping[str, Any]) -> Iterable[str]:
    for f in report["flagged"]:
        yield f"{f['attribute']} {f['group']}: " + "; ".join(f["flags"])
