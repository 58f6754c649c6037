"""``hmmr warehouse migrate|compact|snapshots|dictionary``: looking after the lakehouse."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from hmmr.cli_common import HomeOpt, settings_for

console = Console(width=None if sys.stdout.isatty() else 160)
warehouse_app = typer.Typer(help="Look after the lakehouse: schema migrations, compaction, snapshots, the data dictionary.",
                            no_args_is_help=True)

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """'7d', '12h', '30m', '45s', '2w' (or '0s') as a timedelta."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if not m:
        raise typer.BadParameter(f"{text!r}: use a number and a unit, e.g. 7d, 12h, 30m, 0s")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


@warehouse_app.command()
def migrate(home: HomeOpt = None) -> None:
    """Bring a lakehouse written by an older hmmr to this schema version (DuckLake ALTER TABLE, every row kept)."""
    from warehouse import schemas
    from warehouse.migrations import migrate as run_migrate

    try:
        res = run_migrate(settings_for(home))
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]not migrated:[/red] {exc}")
        raise typer.Exit(1) from exc
    if res.applied:
        console.print(f"migrated from schema version {res.before} to {res.after} ({len(res.applied)} steps)")
    else:
        console.print(f"already at schema version {schemas.SCHEMA_VERSION}: nothing to do")


@warehouse_app.command()
def compact(
    home: HomeOpt = None,
    expire_older_than: Annotated[Optional[str], typer.Option(
        "--expire-older-than", help="Also expire snapshots older than this (e.g. 7d, 12h, 0s) and delete the files "
        "only they read. Time travel to them (hmmr sql --at-version) is then gone.")] = None,
) -> None:
    """Merge small Parquet files and drop rows deleted by re-harvests, with DuckLake's own functions.

    Safe while harvests write (conflicts are retried); no row is lost or duplicated.
    """
    from warehouse.compaction import compact as run_compact

    age = parse_age(expire_older_than) if expire_older_than is not None else None
    try:
        res = run_compact(settings_for(home), expire_older_than=age)
    except FileNotFoundError as exc:
        console.print(f"[red]not compacted:[/red] {exc}")
        raise typer.Exit(1) from exc
    before, after = sum(res.files_before.values()), sum(res.files_after.values())
    console.print(f"data files {before} -> {after} ({', '.join(f'{t} {res.files_after[t]}' for t in res.files_after)}); "
                  f"delete files {res.delete_files_before} -> {res.delete_files_after}")
    if age is not None:
        console.print(f"expired {res.snapshots_expired} snapshots, removed {res.files_removed} files")


@warehouse_app.command()
def snapshots(
    home: HomeOpt = None,
    limit: Annotated[int, typer.Option(help="Show the latest N snapshots (0: all).")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the lakehouse's snapshots (one per harvest commit): id, time, message, what changed.

    Query an old one with: hmmr sql --at-version ID "SELECT ...".
    """
    from warehouse.lake import list_snapshots

    try:
        rows = list_snapshots(settings_for(home)).to_pylist()
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    rows = rows[-limit:] if limit else rows
    if as_json:
        sys.stdout.write(json.dumps(rows, default=str, indent=1) + "\n")
        return
    table = Table(title="snapshots (hmmr sql --at-version ID)")
    for col in ("snapshot_id", "snapshot_time", "schema_version", "commit_message", "changes"):
        table.add_column(col, overflow="fold")
    for r in rows:
        changes = "; ".join(f"{k}: {', '.join(v)}" for k, v in (r["changes"] or []))
        table.add_row(str(r["snapshot_id"]), str(r["snapshot_time"])[:19], str(r["schema_version"]),
                      r["commit_message"] or "", changes)
    console.print(table)


@warehouse_app.command()
def dictionary(
    write: Annotated[bool, typer.Option("--write", help="Write docs/data_dictionary.md instead of printing.")] = False,
) -> None:
    """Print the data dictionary (every table, view and column with type, unit and meaning) as Markdown."""
    from warehouse.dictionary import DOC_PATH, render

    text = render()
    if write:
        DOC_PATH.write_text(text)
        console.print(f"wrote {DOC_PATH}")
    else:
        sys.stdout.write(text)


def register(app: typer.Typer) -> None:
    app.add_typer(warehouse_app, name="warehouse")
