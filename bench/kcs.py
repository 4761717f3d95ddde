"""KCS benchmark: train on the 2020 file, evaluate on 2021-Q1, beside the published baselines.

    make bench-kcs                       # or: .venv/bin/python -m bench.kcs [--no-write]

The data set (Jeong et al. 2022, "Customs Import Declaration Datasets") is looked up in
``$BORDERRISK_KCS_DIR``, else ``../shared/datasets/kcs`` relative to the repository root. Training is
exactly ``borderrisk train cargo --data df_syn_train_eng.csv --mapping training/mappings/kcs.yaml``
(default configuration, seed 42) in a data folder of its own (``$BORDERRISK_DATA_DIR/bench-kcs``,
recreated each run); every choice inside it uses the time-based validation period *inside 2020*.
The registered model — its entity histories frozen at 2020-12-31, as a released model is — then
scores 2021-Q1 through the service's scoring path. 2021-Q1 labels are read only here, to report.

Rows the KCS mapping excludes (0 kg net mass, country ZZ) cannot be scored; the headline counts
them as never selected (ranked last) over all 8,134 rows of the file, which is the paper's
denominator and can only lower precision. Results go to the "KCS benchmark" section of
BENCHMARKS.md (between its markers; other sections are left alone).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
MAPPING = REPO / "training" / "mappings" / "kcs.yaml"
TRAIN_FILE = "df_syn_train_eng.csv"
TEST_FILE = "df_syn_valid_eng.csv"
SHA256 = {
    TRAIN_FILE: "ecec832d94f9f01e49a76884102c8d346945b61cf26b36ca75fea1a703a3cec5",
    TEST_FILE: "ad012c2da5ec025e6676466f10535309028ec0963b6a135215fbb07de79ac7de",
}
#: Rolling checks inside 2020 (train before, test on the period): the evidence used for choices, and
#: for how the frozen model ages — the last one skips a quarter, as 2021-Q2 will be scored.
ROLLING = (
    ("2020-07-01", "2020-07-01", "2020-10-01"),
    ("2020-10-01", "2020-10-01", "2021-01-01"),
    ("2020-07-01", "2020-10-01", "2021-01-01"),
)
#: Jeong et al. 2022, Table 3 (synthetic data, test quarter 2021-Q2).
PUBLISHED = {"LightGBM": {"p5": 0.762, "p10": 0.641}, "XGBoost": {"p5": 0.675, "p10": 0.579}}
TARGET = {"p5": 0.96, "p10": 0.89}
BEGIN, END = "<!-- kcs-benchmark:begin -->", "<!-- kcs-benchmark:end -->"
MARKER = ".bench-kcs"


def kcs_dir() -> Path:
    env = os.environ.get("BORDERRISK_KCS_DIR")
    return (
        Path(env).expanduser().resolve() if env else (REPO.parent / "shared" / "datasets" / "kcs").resolve()
    )


def bench_data_dir() -> Path:
    base = Path(os.environ.get("BORDERRISK_DATA_DIR", REPO / "data"))
    if not base.is_absolute():
        base = REPO / base
    folder = base / "bench-kcs"
    if folder.exists():
        if not (folder / MARKER).exists():
            sys.exit(f"{folder} exists and was not made by this benchmark; move it away")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("made by bench/kcs.py; recreated on each run\n")
    return folder


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)

    src = kcs_dir()
    train_path, test_path = src / TRAIN_FILE, src / TEST_FILE
    for path in (train_path, test_path):
        if not path.is_file():
            sys.exit(f"KCS data set not found: {path} (set BORDERRISK_KCS_DIR)")
        if sha256(path) != SHA256[path.name]:
            sys.exit(f"{path}: SHA-256 differs from the published file; refusing to benchmark on it")

    from borderrisk.settings import Settings
    from training.dataload import load_file
    from training.evaluation import scorer_for
    from training.metrics import precision_at, ranking_metrics
    from training.pipeline import TrainConfig
    from training.registry import fetch_bundle
    from training.run import train_file

    settings = Settings(data_dir=bench_data_dir())
    started = time.perf_counter()
    outcome = train_file(settings, "cargo", train_path, MAPPING, TrainConfig(domain="cargo", seed=42))
    trained = time.perf_counter()
    bundle, reg = fetch_bundle(settings, "cargo", outcome.registered.version)
    test = load_file("cargo", test_path, MAPPING, labelled=True)
    if not test.ok:
        sys.exit(f"{test_path}: {test.failed_rows} row(s) failed validation")
    frame = test.frame
    scored = scorer_for(settings, bundle, reg.version).score_columns(
        {c: frame[c] for c in frame.columns}, explain=False
    )
    # All rows of the file, in file order; rows the mapping excluded are never selected.
    raw = pd.read_csv(test_path, dtype=str, keep_default_na=False)
    y_all = raw["Fraud"].astype(int).to_numpy()
    score_all = np.full(len(raw), -np.inf)
    score_all[frame.index.to_numpy()] = scored.margin
    finished = time.perf_counter()
    rolling = rolling_checks(train_path)
    rolled = time.perf_counter()

    every = ranking_metrics(y_all, np.where(np.isfinite(score_all), score_all, -1e9))
    every |= {f"precision_at_{k}pct": precision_at(y_all, score_all, k / 100) for k in (1, 5, 10)}
    only = ranking_metrics(frame["fraud"].to_numpy(dtype=np.int64), scored.margin)
    inside = {k.removeprefix("valid_"): v for k, v in outcome.result.metrics.items()}
    meta = bundle.metadata
    passed = every["precision_at_5pct"] >= TARGET["p5"] and every["precision_at_10pct"] >= TARGET["p10"]

    def cell(v: float | None) -> str:
        return "—" if v is None else f"{v:.3f}"

    lines = [
        "| metric | 2021-Q1, all 8,134 rows | 2021-Q1, scored rows | 2020 validation period "
        "| LightGBM (paper) | XGBoost (paper) |",
        "|---|---|---|---|---|---|",
    ]
    for name, key, paper in (
        ("precision at 1 %", "precision_at_1pct", None),
        ("precision at 5 %", "precision_at_5pct", "p5"),
        ("precision at 10 %", "precision_at_10pct", "p10"),
        ("ROC-AUC", "roc_auc", None),
    ):
        lgbm = PUBLISHED["LightGBM"][paper] if paper else None
        xgb = PUBLISHED["XGBoost"][paper] if paper else None
        lines.append(
            f"| {name} | **{every[key]:.3f}** | {only[key]:.3f} | {inside[key]:.3f} "
            f"| {cell(lgbm)} | {cell(xgb)} |"
        )
    table = "\n".join(lines)
    verdict = "met" if passed else "NOT met"
    facts = [
        f"target on 2021-Q1: P@5% ≥ {TARGET['p5']}, P@10% ≥ {TARGET['p10']}: **{verdict}**",
        f"trained on {len(outcome.loaded.frame):,} of {outcome.loaded.rows_read:,} rows of 2020 "
        f"({len(outcome.loaded.excluded):,} excluded by the mapping: net mass 0 kg, country ZZ); "
        f"validation period (inside 2020) from {meta['validation_starts'][:10]}; "
        f"{meta['params']['best_iteration']} trees (early stopping); {meta['calibration']} calibration",
        f"2021-Q1: {len(raw):,} rows, {len(test.excluded)} excluded by the mapping (never selected in the "
        f"first column); entity histories frozen at the model's cut-off {bundle.state.cutoff[:10]}: "
        "no 2021 outcome is used",
        f"model `{reg.name}` v{reg.version}, model.txt SHA-256 `{meta['model_sha256'][:16]}…` "
        "(the same on every run: same data and seed, same model)",
        f"wall time: {finished - started:.0f} s to train, report, register and score 2021-Q1 "
        f"(of which training, report and registration {trained - started:.0f} s), "
        f"plus {rolled - finished:.0f} s for the rolling checks; "
        f"{os.cpu_count()} cores",
        "the paper's figures are for the following quarter (2021-Q2), which this repository does not have",
    ]
    details = "\n".join(f"- {f}" for f in facts)
    details += (
        "\n\nRolling checks inside 2020 (same code path; trained on the rows before the cut-off, entity "
        "histories frozen there; the last one skips a quarter, as 2021-Q2 will be scored):\n\n"
        "| trained before | scored | ROC-AUC | P@1% | P@5% | P@10% |\n|---|---|---|---|---|---|\n"
    )
    for (cut, start, end), m in rolling:
        details += (
            f"| {cut} | {start} to {end} (excl.) | {m['roc_auc']:.3f} | {m['precision_at_1pct']:.3f} | "
            f"{m['precision_at_5pct']:.3f} | {m['precision_at_10pct']:.3f} |\n"
        )
    print(table)
    print(details)
    print(f"report of the run: {outcome.run_dir / 'report.html'}")
    if not args.no_write:
        write_section(table, details)
        print("BENCHMARKS.md: KCS benchmark section updated")
    return 0 if passed else 1


def rolling_checks(train_path: Path) -> list[tuple[tuple[str, str, str], dict[str, float]]]:
    from models.scoring import Scorer
    from training.dataload import load_file
    from training.metrics import ranking_metrics
    from training.pipeline import TrainConfig, train

    df = load_file("cargo", train_path, MAPPING, labelled=True).frame
    out = []
    for cut, start, end in ROLLING:
        before = df[df["declared_at"] < cut]
        period = df[(df["declared_at"] >= start) & (df["declared_at"] < end)]
        result = train(before, TrainConfig(domain="cargo", seed=42), validated=True)
        scorer = Scorer(result.bundle, red_share=0.05, yellow_share=0.10)
        margin = scorer.score_columns({c: period[c] for c in period.columns}, explain=False).margin
        out.append(((cut, start, end), ranking_metrics(period["fraud"].to_numpy(dtype=np.int64), margin)))
    return out


def write_section(table: str, details: str) -> None:
    path = REPO / "BENCHMARKS.md"
    body = (
        f"{BEGIN}\n## KCS benchmark\n\n"
        "Korea Customs Service synthetic import declarations (Jeong et al. 2022, *Customs Import "
        "Declaration Datasets*, arXiv:2208.02484): train on 2020 (37,385 declarations, 21.7 % fraud), "
        "evaluate on 2021-Q1 (8,134 declarations, 20.9 % fraud). Precision at *k* %: of the *k* % "
        "highest-scored declarations, the share that were fraudulent.\n\n"
        "```sh\nmake bench-kcs    # = .venv/bin/python -m bench.kcs\n```\n\n"
        f"{table}\n\n{details}\n\n"
        "How the model was chosen without tuning to the split: every feature and setting was chosen on "
        "time-based validation inside 2020 (rolling quarters: train to June → July–September, train to "
        "September → October–December), never on 2021-Q1; the run itself early-stops and calibrates on "
        "its last-20 % validation period inside 2020, with the entity histories of those rows frozen at "
        "the start of that period, as the released model's are at its cut-off. The decisive features are "
        "entity histories of DATE-style combinations: the *consignment* (same HS code, declared value and "
        "net mass — a repeat shipment) and the *lane* (HS × origin × departure × tax type). KCS rows are "
        "CTGAN-synthesised from real declarations and repeat consignments are frequent in it (78 % of "
        "October–December 2020 rows repeat one seen earlier in 2020), which is why precision is so high; "
        "on real data the same features carry the same meaning but less of the signal.\n"
        f"{END}\n"
    )
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + body.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
