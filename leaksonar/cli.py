"""The leaksonar command line: one sub-command per job."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, NoReturn, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from leaksonar import render
from leaksonar.lab.cli import lab_app
from leaksonar.model import Finding, Limits
from leaksonar.scan.engine import ScanOptions, ScanProgress
from leaksonar.scan.job import scan_into_store
from leaksonar.store.db import DB_ENV, Store, StoreError
from leaksonar.targets import SCOPE_ENV, Scope, TargetError, build_space, default_ports, parse_ports

app = typer.Typer(
    name="leaksonar",
    help=(
        "Find databases that answer without a password, measure what they expose, and index the "
        "findings. Scan only address space you are responsible for or authorised to test."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(lab_app, name="lab", help="Real database servers on loopback with synthetic data.")

DEFAULT_WORKERS = min(os.cpu_count() or 1, 8)
PIPE_WIDTH = 200
"""Width of tables written to a pipe or file, where there is no terminal to fit."""
out = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)
err = Console(stderr=True, width=None if sys.stderr.isatty() else PIPE_WIDTH)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help=f"Index: SQLite path or database URL [env {DB_ENV}; default: user data dir]."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def fail(message: str, code: int = 2) -> NoReturn:
    """One-line error on stderr, then exit (2: bad input)."""
    typer.echo(f"leaksonar: error: {message}", err=True)
    raise typer.Exit(code)


def open_store(db: str | None) -> Store:
    try:
        return Store(db)
    except StoreError as exc:
        fail(str(exc))


class ScanBar:
    """Rich progress on stderr: pairs probed, open ports, services, exposed."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("[bold]scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8.0f}/s"),
            TimeElapsedColumn(),
            TextColumn(
                "open {task.fields[open]}  services {task.fields[services]}  exposed {task.fields[exposed]}"
            ),
            console=err,
            transient=True,
            disable=not enabled,
        )
        self.task = self.progress.add_task("scan", total=total, rate=0.0, open=0, services=0, exposed=0)
        self.shown = 0.0

    def update(self, state: ScanProgress, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.shown < 0.1:
            return
        self.shown = now
        stats = state.discovery
        self.progress.update(
            self.task,
            completed=stats.probes,
            rate=stats.rate(),
            open=stats.open,
            services=state.services,
            exposed=state.exposed,
        )


def _jsonl_handle(stack: ExitStack, jsonl: str | None) -> TextIO | None:
    if jsonl is None:
        return None
    if jsonl == "-":
        return sys.stdout
    try:
        return stack.enter_context(open(jsonl, "w", encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot write {jsonl}: {exc.strerror}")


@app.command()
def scan(
    targets: Annotated[
        list[str] | None, typer.Argument(help="Addresses, CIDR blocks (127.77.0.0/24) or ranges (a-b).")
    ] = None,
    ports: Annotated[
        str | None, typer.Option("-p", "--ports", help="Ports: 6379,5432,1-1024 [default: database ports].")
    ] = None,
    input_list: Annotated[
        list[Path] | None, typer.Option("-iL", "--input-list", help="File of targets, one or more a line.")
    ] = None,
    exclude_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--exclude-file", help="Opt-out list of addresses/CIDRs never to touch (always applied)."
        ),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope", help=f"Allowed space, e.g. 127.0.0.0/8; a target outside is refused [env {SCOPE_ENV}]."
        ),
    ] = None,
    jsonl: Annotated[
        str | None,
        typer.Option("--jsonl", help="Write one finding record (JSON) per service to FILE or '-'."),
    ] = None,
    db: DbOption = None,
    rate: Annotated[
        float | None, typer.Option(help="Connection attempts per second (default: unlimited).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=60000, help="Connection attempts in flight.")] = 1000,
    per_host: Annotated[int, typer.Option(min=1, help="Connection attempts in flight per address.")] = 16,
    timeout: Annotated[float, typer.Option(min=0.01, help="Seconds to wait for a TCP handshake.")] = 1.5,
    retries: Annotated[int, typer.Option(min=0, max=10, help="Extra attempts for silent ports.")] = 1,
    read_timeout: Annotated[
        float, typer.Option(min=0.05, help="Seconds allowed for each read while identifying/inspecting.")
    ] = 3.0,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="Discovery processes; limits are shared [default: one per core]."),
    ] = DEFAULT_WORKERS,
    seed: Annotated[int | None, typer.Option(help="Seed of the pseudo-random target order.")] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar and no summary table.")
    ] = False,
) -> None:
    """Scan TARGETS for exposed databases, inspect them read-only and record the findings."""
    try:
        space = build_space(
            targets or [],
            parse_ports(ports) if ports else default_ports(),
            list_files=input_list or [],
            exclude_files=exclude_file or [],
            scope=Scope.from_env(scope),
            seed=seed,
        )
    except TargetError as exc:
        fail(str(exc))
    if rate is not None and rate <= 0:
        fail("--rate must be positive")
    store = open_store(db)
    options = ScanOptions(
        rate=rate,
        concurrency=concurrency,
        per_host=per_host,
        timeout=timeout,
        retries=retries,
        workers=workers,
        limits=Limits(timeout=read_timeout),
    )
    table_console = err if jsonl == "-" else out
    with ExitStack() as stack:
        handle = _jsonl_handle(stack, jsonl)
        bar = ScanBar(space.size, enabled=err.is_terminal and not quiet)
        stack.enter_context(bar.progress)
        started = time.monotonic()
        try:
            scan_id, progress = scan_into_store(space, options, store, jsonl=handle, on_progress=bar.update)
        except KeyboardInterrupt:
            err.print("leaksonar: interrupted; findings so far are stored.")
            raise typer.Exit(130) from None
    elapsed = time.monotonic() - started
    if quiet:
        return
    stats = progress.discovery
    findings = sorted(
        store.scan_findings(scan_id), key=lambda f: (not f.exposed, ipaddress.IPv4Address(f.ip), f.port)
    )
    if findings:
        table_console.print(render.findings_table(findings[:200]))
    table_console.print(
        f"scan {scan_id}: {stats.probes:,} address/port pairs in {elapsed:.2f} s "
        f"({stats.probes / max(elapsed, 1e-9):,.0f}/s): {stats.open} open, {progress.services} services, "
        f"[bold]{progress.exposed} exposed[/]"
    )


def _split_address(address: str) -> tuple[str, int | None]:
    host, _, port_text = address.partition(":")
    try:
        return host, int(port_text) if port_text else None
    except ValueError:
        fail(f"{address!r} is not IP or IP:PORT")


@app.command()
def hosts(db: DbOption = None, as_json: JsonFlag = False, limit: int = 1000) -> None:
    """List indexed hosts, most exposed first."""
    rows = open_store(db).hosts(limit=limit)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif rows:
        out.print(render.hosts_table(rows))
    else:
        err.print("no hosts indexed yet; run `leaksonar scan` first")


@app.command()
def show(
    address: Annotated[str, typer.Argument(help="IP or IP:PORT")],
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show what is known about a host or one of its services."""
    ip, port = _split_address(address)
    rows = open_store(db).services(ip, port)
    if not rows:
        fail(f"{address} is not in the index")
    records = [row["record"] for row in rows]
    if as_json:
        typer.echo(json.dumps(records if port is None else records[0], indent=2, ensure_ascii=False))
        return
    out.print(render.findings_table([Finding.from_record(r) for r in records], title=f"{ip}"))
    for row, record in zip(rows, records, strict=True):
        out.print(
            f"{record['ip']}:{record['port']} first seen {row['first_seen']}, last seen {row['last_seen']}"
        )
        if record["collections"]:
            out.print(render.collections_table(record))


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="Leak sample: CSV, JSON or JSON lines; gzip ok.")],
    as_json: JsonFlag = False,
    limit: Annotated[int, typer.Option(help="Rows read at most.")] = 100_000,
) -> None:
    """Check a leak sample before trusting it: what each column holds, checksum validity, whether IDs agree
    with birth dates, genders, ages and places, duplicates, date ranges, and a verdict with its reasons."""
    from leaksonar import verify as verifying  # the validators are heavy: loaded on first use

    if limit < 1:
        fail("--limit must be at least 1")
    try:
        leak, report = verifying.verify(file, limit)
    except verifying.VerifyError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(verifying.report_record(leak, report), indent=2, ensure_ascii=False))
    else:
        for part in verifying.renderables(leak, report):
            out.print(part)


def main() -> None:
    try:
        app()
    except Exception as exc:  # an internal error: one line, exit 1 (LEAKSONAR_DEBUG=1 for the traceback)
        if os.environ.get("LEAKSONAR_DEBUG"):
            raise
        typer.echo(f"leaksonar: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
