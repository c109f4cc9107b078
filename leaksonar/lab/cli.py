"""`leaksonar lab up|down|status`: the lab from the command line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from leaksonar.lab.manifest import total_rows
from leaksonar.lab.spec import DEFAULT_BASE, LabError, check_base
from leaksonar.terminal import PlainConsole, add_row, plain

lab_app = typer.Typer(
    help="Real database servers on loopback, seeded with synthetic data.", no_args_is_help=True
)

DirOption = Annotated[
    Path, typer.Option("--dir", envvar="LEAKSONAR_LAB_DIR", help="Lab directory (data, logs, manifest.json).")
]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"leaksonar: error: {message}", err=True)
    return typer.Exit(code=code)


@lab_app.command()
def up(
    directory: DirOption = Path(".lab"),
    base: Annotated[
        str, typer.Option(help="Base address; service n listens on base + n (127.0.0.0/8 only).")
    ] = (DEFAULT_BASE),
) -> None:
    """Start every lab server, seed it, and write DIR/manifest.json."""
    try:
        check_base(base)
    except LabError as exc:
        raise _fail(str(exc), 2) from None
    from leaksonar.lab.lifecycle import lab_up

    started = time.monotonic()
    try:
        manifest = lab_up(directory, base)
    except LabError as exc:
        raise _fail(str(exc), 1) from None
    title = plain(f"lab in {manifest['dir']}", style="table.title")
    table = Table("name", "address", "protocol", "auth", "rows", "tls", title=title)
    for entry in manifest["services"]:
        add_row(
            table,
            entry["name"],
            f"{entry['ip']}:{entry['port']}",
            entry["protocol"],
            entry["auth"],
            total_rows(entry),
            entry.get("hostname", ""),
        )
    console = PlainConsole()
    console.print(table)
    console.print(f"up in {time.monotonic() - started:.1f}s")


@lab_app.command()
def down(directory: DirOption = Path(".lab")) -> None:
    """Stop the lab's servers (by recorded PID) and remove its data."""
    from leaksonar.lab.lifecycle import lab_down

    try:
        stopped = lab_down(directory)
    except LabError as exc:
        raise _fail(str(exc), 1) from None
    typer.echo(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@lab_app.command()
def status(directory: DirOption = Path(".lab")) -> None:
    """Show whether each lab server runs; exit code 1 unless all do."""
    from leaksonar.lab.lifecycle import lab_status

    try:
        services = lab_status(directory)
    except LabError as exc:
        raise _fail(str(exc), 1) from None
    table = Table("name", "address", "protocol", "pid", "running")
    for s in services:
        add_row(
            table,
            s["name"],
            s["address"],
            s["protocol"],
            s["pid"],
            plain("yes", style="green") if s["running"] else plain("no", style="red"),
        )
    PlainConsole().print(table)
    if not all(s["running"] for s in services):
        raise typer.Exit(code=1)
