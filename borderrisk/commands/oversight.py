"""Oversight and records over time: ``borderrisk report …`` and ``borderrisk retention …``."""

from __future__ import annotations

import getpass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer

from borderrisk.commands.admin import store_engine
from borderrisk.commands.common import DomainArg, app, console, fail, read_frame
from borderrisk.settings import get_settings

report_app = typer.Typer(
    help="Oversight reports, written as self-contained HTML files.", no_args_is_help=True
)
retention_app = typer.Typer(help="Retention of the decision log.", no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(retention_app, name="retention")


def _day(value: str | None, option: str, end: bool = False) -> datetime | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r}: expected a day as YYYY-MM-DD")
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start + timedelta(days=1) if end else start


@report_app.command("proportionality")
def report_proportionality(
    domain: Annotated[DomainArg, typer.Option(help="cargo or passenger")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write")],
    since: Annotated[str | None, typer.Option(help="first day (YYYY-MM-DD)")] = None,
    until: Annotated[str | None, typer.Option(help="last day included (YYYY-MM-DD)")] = None,
    bound: Annotated[
        float | None, typer.Option(help="flag bound (default BORDERRISK_OVERSIGHT_RATIO_BOUND)")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="an inspection-history file (.parquet/.csv) instead of the decision log"),
    ] = None,
) -> None:
    """Selection, hit and false-positive rates per monitored group, random vs risk hit rates and
    drift — the oversight page, as a file. Reading the decision log is recorded in it."""
    from service.oversight.proportionality import frame_from_history, frame_from_log, proportionality
    from service.oversight.render import render
    from service.routers.oversight import period_label

    settings = get_settings()
    bound = bound or settings.oversight_ratio_bound
    if bound <= 1:
        fail(f"--bound {bound}: must be above 1")
    start, end = _day(since, "--since"), _day(until, "--until", end=True)
    bundle = version = None
    if data is not None:
        import pandas as pd

        frame = frame_from_history(read_frame(data), domain.value)
        when = frame["created_at"]
        if start is not None:
            frame = frame[when >= pd.Timestamp(start).tz_localize(None)]
        if end is not None:
            frame = frame[frame["created_at"] < pd.Timestamp(end).tz_localize(None)]
        source = f"from the history file {data.name}"
    else:
        from service.store import AuditStore

        store = AuditStore(store_engine())
        who = f"cli:{getpass.getuser()}"
        store.append_read(
            who, None, f"cli: proportionality report {domain.value} {since or 'start'}..{until or 'now'}"
        )
        frame = frame_from_log(store, domain.value, start, end)
        source = "from the decision log"
        try:
            from training.registry import fetch_bundle

            bundle, reg = fetch_bundle(settings, domain.value)
            version = reg.version
        except Exception as exc:  # no registry here: the report goes without drift
            console.print(f"[yellow]no registered {domain.value} model for the drift section:[/] {exc}")
    report = proportionality(
        frame,
        domain.value,
        bound=bound,
        min_group=settings.oversight_min_group,
        bundle=bundle,
        model_version=version,
    )
    report |= {"since": start, "until": end, "period": period_label(start, end), "source": source}
    out.write_text(render("oversight/proportionality.html", r=report, form={}, who=None, standalone=True))
    flagged = [f"{f['attribute']} {f['group']}" for f in report["flagged"]]
    console.print(
        f"wrote {out}: {report['decisions']:,} decisions, "
        + (f"flagged: {', '.join(flagged)}" if flagged else "no group outside the bound")
    )


@retention_app.command("apply")
def retention_apply(
    now: Annotated[
        str | None, typer.Option(help="the reference instant (ISO 8601, default: now); for back-dated runs")
    ] = None,
) -> None:
    """Mask the personal fields of decisions older than BORDERRISK_RETENTION_MASK_DAYS and delete the
    records older than BORDERRISK_RETENTION_DELETE_DAYS; the chain stays verifiable."""
    from service.store import AuditStore, verify_chain

    settings = get_settings()
    try:
        ref = datetime.fromisoformat(now) if now else datetime.now(UTC)
    except ValueError:
        fail(f"--now {now!r}: expected an ISO 8601 instant")
    if ref.tzinfo is None:
        ref = ref.replace(tzinfo=UTC)
    engine = store_engine()
    store = AuditStore(engine)
    mask_before = ref - timedelta(days=settings.retention_mask_days)
    delete_before = ref - timedelta(days=settings.retention_delete_days)
    deleted = store.delete_before(delete_before)
    masked = store.mask_personal(mask_before)
    result = verify_chain(engine)
    console.print(
        f"deleted {deleted} records created before {delete_before:%Y-%m-%d} "
        f"({settings.retention_delete_days} days); masked personal fields of {masked} records created before "
        f"{mask_before:%Y-%m-%d} ({settings.retention_mask_days} days)"
    )
    if not result.ok:
        console.print(f"[bold red]chain BROKEN[/] at record {result.first_broken_seq}: {result.reason}")
        raise typer.Exit(code=1)
    console.print(f"chain OK: {result.records} records, head {result.head_hash}")
