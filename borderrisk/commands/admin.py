"""API keys and the decision log: ``borderrisk keys …`` and ``borderrisk audit …``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from borderrisk.commands.common import app, console, fail
from borderrisk.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

keys_app = typer.Typer(help="API keys: one per person or system, with a role.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained decision log.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")

ROLES = ("officer", "analyst", "auditor", "admin")


def store_engine() -> Engine:
    """The decision log's database, migrated to the current schema."""
    from service.store import StoreUnavailable, make_engine, migrate

    settings = get_settings()
    if settings.audit_url.startswith("sqlite"):
        settings.data_path.mkdir(parents=True, exist_ok=True)
    try:
        engine = make_engine(settings.audit_url)
        migrate(engine)
    except StoreUnavailable as exc:
        fail(f"the decision log at {settings.audit_url} is unavailable: {exc}")
    return engine


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help=f"one of: {', '.join(ROLES)}")],
    name: Annotated[str, typer.Option(help="the person or system the key belongs to (unique)")],
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from service.store import KeyStore

    if role not in ROLES:
        fail(f"--role {role!r}: expected one of {', '.join(ROLES)}")
    try:
        key = KeyStore(store_engine()).create(name, role)
    except ValueError as exc:
        fail(f"--name {name!r}: {exc}")
    console.print(f"created {role} key for [bold]{name}[/] (shown once, store it now):")
    print(key)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key; it stops working within the key cache TTL (BORDERRISK_KEY_CACHE_TTL)."""
    from service.store import KeyStore

    if not KeyStore(store_engine()).revoke(name):
        fail(f"no active key named {name!r}")
    console.print(f"revoked {name}")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (names, roles, dates; never the keys or their hashes)."""
    from service.store import KeyStore

    rows = KeyStore(store_engine()).list()
    json.dump(rows, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")


@keys_app.command("demo")
def keys_demo() -> None:
    """Create one demo key per role (once) and print them: for ``make run`` on a laptop, never production."""
    from service.store import KeyStore

    settings = get_settings()
    if settings.env == "prod":
        fail("demo keys are refused when BORDERRISK_ENV=prod")
    path = settings.data_path / "demo-keys.json"
    if path.exists():
        keys = json.loads(path.read_text())
    else:
        store = KeyStore(store_engine())
        keys = {role: store.create(f"demo-{role}", role) for role in ROLES}
        path.write_text(json.dumps(keys, indent=1))
        os.chmod(path, 0o600)
    console.print(f"demo API keys (also in {path}):")
    for role, key in keys.items():
        print(f"  {role:<8} {key}")


@audit_app.command("verify")
def audit_verify(
    expect_hash: Annotated[
        str | None, typer.Option(help="a head hash published earlier: must be in the chain")
    ] = None,
) -> None:
    """Recompute the hash chain; name the first broken record, exit 1 if any."""
    from service.store import verify_chain

    result = verify_chain(store_engine(), expect_hash=expect_hash)
    if result.ok:
        console.print(f"chain OK: {result.records} records, head {result.head_hash}")
        return
    console.print(f"[bold red]chain BROKEN[/] at record {result.first_broken_seq}: {result.reason}")
    raise typer.Exit(code=1)


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option("--out", help="file to write (.jsonl or .csv)")],
) -> None:
    """Export the decisions with the chain head, so an outside body can check nothing was removed."""
    from service.store import AuditStore

    fmt = out.suffix.lstrip(".")
    if fmt not in ("jsonl", "csv"):
        fail(f"--out {out}: expected a .jsonl or .csv file")
    info = AuditStore(store_engine()).export(out, fmt=fmt)
    console.print(f"wrote {info['decisions']} decisions to {out}; chain head {info['head_hash']}")
