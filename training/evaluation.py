"""Evaluating a registered model on a labelled file, and the promotion gate.

Evaluation scores a file through the same path as the service (the registry's verified bundle and
:meth:`models.scoring.Scorer.score_columns`, entity histories frozen at the model's cut-off) and
reports the training metrics on its inspected rows, month by month too.

Promotion (``borderrisk promote``) moves ``champion`` to the ``challenger`` only if the challenger is
no worse on the *same* rows at the operating point: precision at the red share of the flow
(``settings.channel_shares``). The rows must be unseen by both models, or the comparison flatters the
one that saw them (with entity histories, a model that has a row's outcome in its state all but reads
the label). A model's score of a row counts as honest when

* the row is in the model's own validation period — the run stores those rows with the margin that the
  model gave them with its features frozen at the start of that period, trees never trained on them
  (``evaluation/validation_rows.parquet``); or
* the row is dated after the model's cut-off: its registered bundle scores it as the service would.

By default the rows are the challenger's validation period (stored with its run, so the comparison
does not depend on the training file still being on disk); ``--eval-data`` compares on a file
instead. Rows that either model cannot score honestly are left out and counted; if too few remain,
the gate refuses and says which period would do.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from borderrisk.settings import MODEL_NAMES, Settings
from features.domains import builder_class
from features.frames import LABELS
from models.bundle import ModelBundle
from models.scoring import Scorer
from training.dataload import LoadedFile, load_file
from training.metrics import monthly_metrics, precision_at, ranking_metrics
from training.registry import (
    CHALLENGER,
    CHAMPION,
    RegisteredVersion,
    client,
    download_run_artifact,
    experiment_id,
    fetch_bundle,
    resolve,
    tag_version,
)
from training.run import EVAL_DIR, VALIDATION_ROWS

MIN_COMPARISON_ROWS = 100


class GateError(Exception):
    """The promotion cannot be decided (no common unseen rows, no challenger, a bad eval file)."""


@dataclass
class Evaluation:
    version: RegisteredVersion
    bundle: ModelBundle
    loaded: LoadedFile
    metrics: dict[str, float]
    random_metrics: dict[str, float] | None
    monthly: pd.DataFrame
    margin: np.ndarray  # every validated row
    prob: np.ndarray
    rows_on_or_before_cutoff: int


def scorer_for(settings: Settings, bundle: ModelBundle, version: str) -> Scorer:
    red, yellow = settings.channel_shares(bundle.domain)
    return Scorer(bundle, red_share=red, yellow_share=yellow, version=version)


def cutoff_of(bundle: ModelBundle) -> pd.Timestamp:
    return pd.Timestamp(bundle.state.cutoff)


def evaluate_file(
    settings: Settings, domain: str, data: Path, mapping_path: Path | None, ref: str = CHAMPION
) -> Evaluation:
    """Score a labelled file with a registered version; raises ValueError if rows fail validation."""
    loaded = load_file(domain, data, mapping_path, labelled=True)
    if not loaded.ok:
        raise ValueError(
            f"{data}: {loaded.failed_rows:,} row(s) failed validation ({len(loaded.failures):,} problems)"
        )
    bundle, reg = fetch_bundle(settings, domain, ref)
    frame = loaded.frame
    scored = scorer_for(settings, bundle, reg.version).score_columns(
        {c: frame[c] for c in frame.columns}, explain=False
    )
    cls = builder_class(domain)
    inspected = frame["inspected"].to_numpy(dtype=bool)
    y = frame[cls.label_field].fillna(0).to_numpy(dtype=np.int64)
    revenue = (
        frame["revenue_recovered"].to_numpy(dtype=np.float64, na_value=np.nan)
        if "revenue_recovered" in frame
        else None
    )
    m, p = scored.margin, scored.score
    metrics = ranking_metrics(
        y[inspected], m[inspected], p[inspected], None if revenue is None else revenue[inspected]
    )
    random = inspected & (frame["selection"].astype("str").to_numpy() == "random")
    random_metrics = (
        ranking_metrics(y[random], m[random], p[random]) if random.sum() >= 50 and y[random].sum() else None
    )
    times = frame[cls.time_field]
    monthly = monthly_metrics(times.to_numpy()[inspected], y[inspected], m[inspected], p[inspected])
    seen = int((times <= cutoff_of(bundle)).sum())
    return Evaluation(reg, bundle, loaded, metrics, random_metrics, monthly, m, p, seen)


def evaluation_report(settings: Settings, ev: Evaluation) -> str:
    from training.report import Report, data_sections, model_sections

    domain = ev.bundle.domain
    cls = builder_class(domain)
    frame = ev.loaded.frame
    inspected = frame["inspected"].to_numpy(dtype=bool)
    y = frame[cls.label_field].fillna(0).to_numpy(dtype=np.int64)
    red, _ = settings.channel_shares(domain)
    builder = ev.bundle.builder()
    X = builder.transform({c: frame[c] for c in frame.columns})
    report = Report(
        title=f"{ev.version.name} v{ev.version.version} — evaluation on {ev.loaded.path.name}",
        facts={
            "model": f"{ev.version.name} v{ev.version.version}",
            "bundle SHA-256": ev.version.sha256,
            "features frozen at (model cut-off)": str(ev.bundle.state.cutoff),
            "rows dated on or before the cut-off": (
                f"{ev.rows_on_or_before_cutoff:,} (their outcomes may be in the model)"
            ),
            "data file": str(ev.loaded.path),
            "data SHA-256": ev.loaded.data_sha256,
            "mapping SHA-256": ev.loaded.mapping_sha256 or "—",
        },
    )
    model_sections(
        report,
        y=y[inspected],
        margin=ev.margin[inspected],
        prob=ev.prob[inspected],
        times=frame[cls.time_field].to_numpy()[inspected],
        revenue=frame["revenue_recovered"].to_numpy(dtype=np.float64, na_value=np.nan)[inspected]
        if "revenue_recovered" in frame
        else None,
        random_mask=frame["selection"].astype("str").to_numpy()[inspected] == "random",
        red_share=red,
        booster=ev.bundle.booster,
        X=X[inspected],
        feature_names=builder.feature_names,
        period=f"{ev.loaded.path.name}",
    )
    data_sections(report, ev.loaded, frame, cls.time_field)
    return report.render()


# -- promotion ---------------------------------------------------------------------------------------


@dataclass
class Comparison:
    domain: str
    rate: float
    source: str
    rows: int
    positives: int
    left_out: dict[str, int]
    challenger: dict[str, Any]
    champion: dict[str, Any]
    passed: bool
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": f"precision at {self.rate:.0%} (the red share)",
            "rate": self.rate,
            "source": self.source,
            "rows": self.rows,
            "positives": self.positives,
            "left_out": self.left_out,
            "challenger": self.challenger,
            "champion": self.champion,
            "passed": self.passed,
            "notes": self.notes,
        }


def stored_validation_rows(settings: Settings, run_id: str, dst: Path) -> pd.DataFrame | None:
    path = download_run_artifact(settings, run_id, f"{EVAL_DIR}/{VALIDATION_ROWS}", dst)
    return pd.read_parquet(path) if path is not None and path.is_file() else None


def honest_margins(
    settings: Settings,
    domain: str,
    bundle: ModelBundle,
    version: str,
    rows: pd.DataFrame,
    stored: pd.DataFrame | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Margins of ``rows`` that the model gave without knowing their outcomes, else NaN; and which
    came from the model's stored validation rows."""
    cls = builder_class(domain)
    id_field, time_field = cls.id_field, cls.time_field
    margin = np.full(len(rows), np.nan)
    from_stored = np.zeros(len(rows), dtype=bool)
    if stored is not None and len(stored):
        key = stored[id_field].astype("str") + "|" + pd.to_datetime(stored[time_field]).astype("str")
        lookup = pd.Series(stored["margin"].to_numpy(dtype=np.float64), index=key.to_numpy())
        lookup = lookup[~lookup.index.duplicated(keep=False)]
        row_key = rows[id_field].astype("str") + "|" + pd.to_datetime(rows[time_field]).astype("str")
        got = row_key.map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
        from_stored = ~np.isnan(got)
        margin[from_stored] = got[from_stored]
    later = (rows[time_field] > cutoff_of(bundle)).to_numpy() & ~from_stored
    if later.any():
        part = rows[later]
        scored = scorer_for(settings, bundle, version).score_columns(
            {c: part[c] for c in part.columns}, explain=False
        )
        margin[later] = scored.margin
    return margin, from_stored


def compare(
    settings: Settings,
    domain: str,
    eval_data: Path | None = None,
    mapping_path: Path | None = None,
) -> tuple[Comparison, RegisteredVersion, RegisteredVersion]:
    """Challenger vs champion at the red share, on rows unseen by both."""
    champ_bundle, champ = fetch_bundle(settings, domain, CHAMPION)
    chall_bundle, chall = fetch_bundle(settings, domain, CHALLENGER)
    if champ.version == chall.version:
        raise GateError(
            f"{chall.name} v{chall.version} is already the champion; train a new challenger first"
        )
    label = LABELS[domain]
    with tempfile.TemporaryDirectory() as tmp:
        chall_rows = stored_validation_rows(settings, chall.run_id, Path(tmp) / "challenger")
        champ_rows = stored_validation_rows(settings, champ.run_id, Path(tmp) / "champion")
    if eval_data is not None:
        loaded = load_file(domain, eval_data, mapping_path, labelled=True)
        if not loaded.ok:
            raise GateError(
                f"{eval_data}: {loaded.failed_rows:,} row(s) failed validation; fix the file or the mapping "
                "(see `borderrisk evaluate` for the list)"
            )
        rows = loaded.frame.reset_index(drop=True)
        source = f"file {eval_data} (SHA-256 {loaded.data_sha256[:12]}…)"
    else:
        if chall_rows is None:
            raise GateError(
                f"{chall.name} v{chall.version}: its run has no stored validation rows "
                f"({EVAL_DIR}/{VALIDATION_ROWS}); give --eval-data FILE [--mapping M]"
            )
        rows = chall_rows
        source = f"validation period of the challenger v{chall.version} (stored with its run)"
    inspected = rows["inspected"].to_numpy(dtype=bool)
    m_chall, s_chall = honest_margins(settings, domain, chall_bundle, chall.version, rows, chall_rows)
    m_champ, s_champ = honest_margins(settings, domain, champ_bundle, champ.version, rows, champ_rows)
    ok_chall, ok_champ = ~np.isnan(m_chall), ~np.isnan(m_champ)
    common = inspected & ok_chall & ok_champ
    left_out = {
        "not inspected (no outcome)": int((~inspected).sum()),
        "seen by the challenger (on or before its cut-off, not in its validation)": int(
            (inspected & ~ok_chall).sum()
        ),
        "seen by the champion (on or before its cut-off, not in its validation)": int(
            (inspected & ok_chall & ~ok_champ).sum()
        ),
    }
    y = rows[label].fillna(0).to_numpy(dtype=np.int64)
    red, _ = settings.channel_shares(domain)
    n, pos = int(common.sum()), int(y[common].sum())
    if n < MIN_COMPARISON_ROWS or pos == 0:
        after = max(cutoff_of(champ_bundle), cutoff_of(chall_bundle))
        raise GateError(
            f"only {n} inspected row(s) ({pos} with a finding) are unseen by both models on the "
            f"{source}; need at least {MIN_COMPARISON_ROWS} with findings. Give --eval-data with "
            f"inspections dated after {after} (both cut-offs)"
        )

    def summary(reg: RegisteredVersion, margin: np.ndarray, stored: np.ndarray) -> dict[str, Any]:
        m = ranking_metrics(y[common], margin[common])
        return {
            "version": reg.version,
            "bundle_sha256": reg.sha256,
            "precision_at_red_share": precision_at(y[common], margin[common], red),
            "roc_auc": m.get("roc_auc"),
            "pr_auc": m.get("pr_auc"),
            "precision_at_5pct": m["precision_at_5pct"],
            "precision_at_10pct": m["precision_at_10pct"],
            "rows_from_its_validation": int((stored & common).sum()),
            "rows_scored_after_its_cutoff": int((~stored & common).sum()),
        }

    a, b = summary(chall, m_chall, s_chall), summary(champ, m_champ, s_champ)
    comparison = Comparison(
        domain=domain,
        rate=red,
        source=source,
        rows=n,
        positives=pos,
        left_out=left_out,
        challenger=a,
        champion=b,
        passed=a["precision_at_red_share"] >= b["precision_at_red_share"],
    )
    if a["rows_from_its_validation"]:
        comparison.notes.append(
            "the challenger's early stopping and calibration used its validation rows: for the strictest "
            "comparison, give --eval-data with a later period"
        )
    return comparison, chall, champ


def promote(
    settings: Settings,
    domain: str,
    *,
    reason: str,
    by: str,
    eval_data: Path | None = None,
    mapping_path: Path | None = None,
    force: bool = False,
) -> tuple[Comparison | None, RegisteredVersion, bool]:
    """Run the gate and move ``champion`` if it passes (or ``force``). Every attempt is recorded."""
    import mlflow

    if not reason or len(reason.strip()) < 3:
        raise GateError("--reason is required: say why this model should serve")
    comparison: Comparison | None = None
    error: str | None = None
    try:
        comparison, chall, champ = compare(settings, domain, eval_data, mapping_path)
    except GateError as exc:
        if not force:
            raise
        error = str(exc)
        chall, champ = resolve(settings, domain, CHALLENGER), resolve(settings, domain, CHAMPION)
        if chall.version == champ.version:
            raise
    passed = comparison is not None and comparison.passed
    promoted = passed or force
    now = datetime.now(UTC).isoformat(timespec="seconds")
    record = {
        "promoted": promoted,
        "forced": force and not passed,
        "by": by,
        "reason": reason,
        "at": now,
        "challenger": chall.version,
        "champion_before": champ.version,
        "comparison": comparison.as_dict() if comparison else None,
        "comparison_error": error,
    }
    c = client(settings)
    exp = experiment_id(c, settings, domain)
    outcome = "promoted" if passed else "forced" if promoted else "refused"
    with mlflow.start_run(
        experiment_id=exp, run_name=f"promotion v{champ.version} → v{chall.version}: {outcome}"
    ):
        mlflow.set_tags(
            {
                "kind": "promotion",
                "domain": domain,
                "outcome": outcome,
                "promoted_by": by,
                "promotion_reason": reason,
                "challenger_version": chall.version,
                "champion_version": champ.version,
            }
        )
        if comparison is not None:
            mlflow.log_metrics(
                {
                    "challenger_precision_at_red_share": comparison.challenger["precision_at_red_share"],
                    "champion_precision_at_red_share": comparison.champion["precision_at_red_share"],
                    "comparison_rows": float(comparison.rows),
                    "comparison_positives": float(comparison.positives),
                }
            )
        mlflow.log_dict(record, "promotion.json")
    short = json.dumps(
        {k: record[k] for k in ("by", "reason", "at", "forced")}
        | (
            {
                "challenger_precision": comparison.challenger["precision_at_red_share"],
                "champion_precision": comparison.champion["precision_at_red_share"],
                "rows": comparison.rows,
                "source": comparison.source,
            }
            if comparison
            else {"comparison_error": error}
        )
    )[:5000]
    if promoted:
        from training.registry import set_alias

        set_alias(
            settings,
            domain,
            CHAMPION,
            chall.version,
            {
                "promoted_at": now,
                "promoted_by": by,
                "promotion_reason": reason[:4000],
                "promotion_forced": str(bool(force and not passed)).lower(),
                "promotion_comparison": short,
                "previous_champion": champ.version,
            },
        )
        tag_version(settings, domain, champ.version, {"superseded_by": chall.version, "superseded_at": now})
    else:
        tag_version(
            settings, domain, chall.version, {"promotion_refused_at": now, "promotion_refusal": short}
        )
    return comparison, chall, promoted


def model_name(domain: str) -> str:
    return MODEL_NAMES[domain]
