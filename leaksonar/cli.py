"""The leaksonar command line: one sub-command per job."""

from __future__ import annotations

import gc
import inspect
import ipaddress
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO, get_type_hints

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from leaksonar import render
from leaksonar.formats import human_bytes, human_count
from leaksonar.lab.cli import lab_app
from leaksonar.model import Event, Finding, Limits
from leaksonar.run.job import ResumeError, ScanJob, new_job, resume_job, run_job, start_workers
from leaksonar.scan.engine import ScanOptions, ScanProgress
from leaksonar.scan.enrich import ASN_ENV, GEO_ENV, EnrichError, configured
from leaksonar.scan.enrich import check as check_mmdbs
from leaksonar.scan.workers import stop_workers
from leaksonar.store import DB_ENV
from leaksonar.targets import (
    SCOPE_ENV,
    Scope,
    TargetError,
    TargetSpace,
    build_space,
    default_ports,
    parse_ports,
)

if TYPE_CHECKING:
    from leaksonar.notify.alerts import Delivery
    from leaksonar.notify.rules import AlertConfig
    from leaksonar.store.db import Store

gc.freeze()  # start-up: the imported modules live until exit, so neither the collector nor exit walks them

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
    from leaksonar.store.db import Store, StoreError  # SQLAlchemy: loaded once a command needs the index

    gc.freeze()  # as at start-up: its modules live until exit, and the collector need not walk them
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


@dataclass(frozen=True, slots=True)
class ScanSetup:
    """What `scan` and `watch` scan, how, and into which index (their shared options, checked)."""

    space: TargetSpace
    options: ScanOptions
    db: str | None
    alerts: AlertConfig | None
    scope: Scope | None
    job: ScanJob | None = None
    """`scan --resume`: the unfinished scan to run on (space and options are its own)."""


def scan_setup(
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
    geo_db: Annotated[
        str | None,
        typer.Option("--geo-db", help=f"Country/City database (.mmdb, MaxMind format) [env {GEO_ENV}]."),
    ] = None,
    asn_db: Annotated[
        str | None, typer.Option("--asn-db", help=f"ASN database (.mmdb, MaxMind format) [env {ASN_ENV}].")
    ] = None,
    alerts: Annotated[
        Path | None,
        typer.Option("--alerts", help="Deliver the change events by these alert rules and channels (TOML)."),
    ] = None,
) -> ScanSetup:
    """The options `scan` and `watch` share (one definition: `with_scan_setup`), checked."""
    try:
        guard = Scope.from_env(scope)
        space = build_space(
            targets or [],
            parse_ports(ports) if ports else default_ports(),
            list_files=input_list or [],
            exclude_files=exclude_file or [],
            scope=guard,
            seed=seed,
        )
    except TargetError as exc:
        fail(str(exc))
    if rate is not None and rate <= 0:
        fail("--rate must be positive")
    alert_config = _alert_config(alerts) if alerts is not None else None
    geo_db, asn_db = configured(geo_db, GEO_ENV), configured(asn_db, ASN_ENV)
    try:
        for warning in check_mmdbs(geo_db, asn_db):
            err.print(f"leaksonar: warning: {warning}")
    except EnrichError as exc:
        fail(str(exc))
    options = ScanOptions(
        rate=rate,
        concurrency=concurrency,
        per_host=per_host,
        timeout=timeout,
        retries=retries,
        workers=workers,
        limits=Limits(timeout=read_timeout),
        geo_db=geo_db,
        asn_db=asn_db,
    )
    return ScanSetup(space, options, db, alert_config, guard)


def _resume_setup(scan_id: str, given: dict[str, Any]) -> ScanSetup:
    """`scan --resume`: the stored scan's own targets, ports, seed and options; only --db and --alerts
    may be given with it."""
    defaults = inspect.signature(scan_setup).parameters
    again = [
        "TARGETS" if name == "targets" else f"--{name.replace('_', '-')}"
        for name, value in given.items()
        if name not in ("db", "alerts") and value != defaults[name].default
    ]
    if again:
        fail(f"--resume runs scan {scan_id} on with its own targets and options; drop {', '.join(again)}")
    store = open_store(given["db"])
    try:
        job = resume_job(scan_id, store)
    except ResumeError as exc:
        fail(str(exc))
    alerts = _alert_config(given["alerts"]) if given["alerts"] is not None else None
    return ScanSetup(job.space, job.options, given["db"], alerts, None, job)


def with_scan_setup(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` the options of `scan_setup` as well as its own; it is called with their checked
    result as its first argument, `setup`."""
    shared = inspect.signature(scan_setup).parameters
    own = [p for name, p in inspect.signature(command).parameters.items() if name != "setup"]
    hints = get_type_hints(scan_setup, include_extras=True) | get_type_hints(command, include_extras=True)
    parameters = [p.replace(annotation=hints[p.name]) for p in (*shared.values(), *own)]

    def run(**values: Any) -> None:
        given = {name: values.pop(name) for name in shared}
        resume = values.get("resume")
        command(scan_setup(**given) if resume is None else _resume_setup(resume, given), **values)

    run.__name__, run.__doc__ = command.__name__, command.__doc__
    run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return run


BrokerOption = Annotated[
    str | None,
    typer.Option("--broker", help="Redis broker of the workers: redis://HOST:PORT/N [env LEAKSONAR_BROKER]."),
]
ShardsOption = Annotated[
    int | None, typer.Option("--shards", min=1, help="Shards to cut the space into [default: by size].")
]


def _distributed_scan(
    setup: ScanSetup,
    store: Store,
    broker: str | None,
    shards: int | None,
    jsonl: TextIO | None,
    on_progress: Callable[[ScanProgress], None],
) -> tuple[str, ScanProgress]:
    from leaksonar.run.distributed.app import BrokerError
    from leaksonar.run.distributed.submit import ShardError, distributed_scan

    try:
        return distributed_scan(
            setup.space,
            setup.options,
            setup.scope,
            store,
            broker=broker,
            shards=shards,
            jsonl=jsonl,
            on_progress=on_progress,
            alerts=setup.alerts,
        )
    except BrokerError as exc:
        fail(str(exc))
    except ShardError as exc:
        fail(str(exc), 1)


@app.command()
@with_scan_setup
def scan(
    setup: ScanSetup,
    jsonl: Annotated[
        str | None,
        typer.Option("--jsonl", help="Write one finding record (JSON) per service to FILE or '-'."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar and no summary table.")
    ] = False,
    distributed: Annotated[
        bool, typer.Option("--distributed", help="Queue shards for `leaksonar worker`s (see --broker).")
    ] = False,
    broker: BrokerOption = None,
    shards: ShardsOption = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="SCAN_ID",
            help="Finish an unfinished (killed, interrupted) scan from its last checkpoint, with its own "
            "targets and options.",
        ),
    ] = None,
) -> None:
    """Scan TARGETS for exposed databases, inspect them read-only and record the findings."""
    space, options = setup.space, setup.options
    if setup.job is not None and distributed:
        fail("--resume does not combine with --distributed")
    table_console = err if jsonl == "-" else out
    with ExitStack() as stack:
        handle = _jsonl_handle(stack, jsonl)
        started = time.monotonic()
        # a new local scan's workers probe from here on, while this process loads and opens the index
        workers = None if distributed or setup.job else start_workers(space, options)
        try:
            store = open_store(setup.db)
        except typer.Exit:
            stop_workers(workers or [])
            raise
        bar = ScanBar(space.size, enabled=err.is_terminal and not quiet)
        stack.enter_context(bar.progress)
        job = None if distributed else setup.job or new_job(space, options, store)
        try:
            if job is None:
                scan_id, progress = _distributed_scan(setup, store, broker, shards, handle, bar.update)
            else:
                scan_id = job.scan_id
                progress = run_job(
                    job, store, jsonl=handle, on_progress=bar.update, alerts=setup.alerts, workers=workers
                )
        except KeyboardInterrupt:
            hint = f"; continue with `leaksonar scan --resume {job.scan_id}`" if job else ""
            err.print(f"leaksonar: interrupted; findings so far are stored{hint}.", highlight=False)
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
def search(
    query: Annotated[
        str, typer.Argument(help="e.g. 'protocol:elasticsearch AND pii:national_id' (docs/search.md).")
    ],
    db: DbOption = None,
    as_json: JsonFlag = False,
    facets: Annotated[
        bool, typer.Option("--facets", help="Also count the top values of each facet.")
    ] = False,
    limit: Annotated[int, typer.Option(min=0, max=1000, help="Hits to show.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Hits to skip (paging).")] = 0,
) -> None:
    """Search the index: most severe services first; the query language is in docs/search.md."""
    from rich.table import Table

    from leaksonar.store.query import QueryError

    store = open_store(db)
    try:
        page = store.search(query, limit=limit, offset=offset)
        counts = store.facets(query) if facets else None
    except QueryError as exc:
        fail(str(exc))
    if as_json:
        found: dict[str, Any] = {"total": page.total, "hits": page.hits}
        if counts is not None:
            found["facets"] = {field: [list(pair) for pair in top] for field, top in counts.items()}
        typer.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{page.total:,} found", title_justify="left")
    for column in ("address", "protocol", "software", "severity", "rows", "size", "pii", "summary"):
        table.add_column(column, justify="right" if column in ("rows", "size") else "left")
    for hit in page.hits:
        dataset = hit["dataset"]
        table.add_row(
            f"{hit['ip']}:{hit['port']}",
            hit["protocol"],
            render.software_text(hit),
            render.severity_text(hit.get("severity")),
            human_count(dataset["rows"]),
            human_bytes(dataset["size_bytes"]),
            ", ".join(hit.get("pii") or {}),
            hit.get("summary", ""),
        )
    out.print(table)
    for field, top in (counts or {}).items():
        out.print(f"{field}: " + ", ".join(f"{value} {n:,}" for value, n in top), highlight=False)


@app.command()
def show(
    address: Annotated[str, typer.Argument(help="IP or IP:PORT")],
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show what is known about a host or one of its services, with its timeline of change events."""
    from leaksonar.changes.diff import days_exposed
    from leaksonar.render import events_table

    ip, port = _split_address(address)
    store = open_store(db)
    rows = store.services(ip, port)
    if not rows:
        fail(f"{address} is not in the index")
    records = [row["record"] for row in rows]
    timelines = [store.events(ip=row["ip"], port=row["port"]) for row in rows]
    if as_json:
        for row, record, timeline in zip(rows, records, timelines, strict=True):
            record["history"] = {
                "first_seen": row["first_seen"],
                "last_seen": row["last_seen"],
                "days_exposed": days_exposed(timeline, row["last_seen"]),
                "events": [e.to_record() for e in timeline],
            }
        typer.echo(json.dumps(records if port is None else records[0], indent=2, ensure_ascii=False))
        return
    out.print(render.findings_table([Finding.from_record(r) for r in records], title=f"{ip}"))
    for row, record, timeline in zip(rows, records, timelines, strict=True):
        out.print(
            f"{record['ip']}:{record['port']} first seen {row['first_seen']}, last seen {row['last_seen']}, "
            f"exposed {days_exposed(timeline, row['last_seen']):g} days"
        )
        if record["collections"]:
            out.print(render.collections_table(record))
        if timeline:
            out.print(events_table(timeline, title=f"{record['ip']}:{record['port']} timeline"))


@app.command()
def events(
    since: Annotated[
        str | None,
        typer.Option(help="Only events at or after this time: ISO 8601 (2026-11-28) or ago (7d, 24h)."),
    ] = None,
    types: Annotated[
        str | None, typer.Option("--type", help="Only these types, comma-separated (e.g. wiped,closed).")
    ] = None,
    ip: Annotated[str | None, typer.Option("--ip", help="Only events on this IP (or IP:PORT).")] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per event (JSON lines).")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Show the newest N events at most.")] = 1000,
) -> None:
    """List change events, oldest first: new exposures, wipes, ransom notes, closed services ..."""
    from leaksonar.formats import parse_since
    from leaksonar.model import EVENT_TYPES
    from leaksonar.render import event_line, events_table

    wanted = [t.strip() for t in (types or "").split(",") if t.strip()]
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        fail(f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}")
    try:
        start = parse_since(since) if since is not None else None
    except ValueError as exc:
        fail(f"--since: {exc}")
    host, port = _split_address(ip) if ip else (None, None)
    if host is not None:
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            fail(f"--ip: {ip!r} is not an IPv4 address")
    found = open_store(db).events(since=start, types=wanted, ip=host, port=port, limit=limit)
    if as_json:
        for event in found:
            typer.echo(json.dumps(event.to_record(), ensure_ascii=False))
    elif not sys.stdout.isatty():
        for event in found:
            typer.echo(event_line(event))
    elif found:
        out.print(events_table(found))
    else:
        err.print("no events")


@app.command()
@with_scan_setup
def watch(
    setup: ScanSetup,
    every: Annotated[
        str, typer.Option(help="Time from the start of one pass to the next: 90s, 15m, 1h, 1h30m, 1d.")
    ] = "1h",
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (for cron).")] = False,
) -> None:
    """Scan TARGETS again on a schedule, with the options of `scan`; print each pass's change events."""
    from leaksonar.formats import parse_duration
    from leaksonar.render import event_line
    from leaksonar.run.watch import watch as watching

    try:
        interval = parse_duration(every)
    except ValueError as exc:
        fail(f"--every: {exc}")
    store = open_store(setup.db)

    def on_pass(scan_id: str, progress: ScanProgress, found: list[Event]) -> None:
        for event in found:
            typer.echo(event_line(event))
        err.print(
            f"scan {scan_id}: {progress.services} services, {progress.exposed} exposed, "
            f"{len(found)} change event{'s' * (len(found) != 1)}",
            highlight=False,
        )

    try:
        watching(
            setup.space, setup.options, store, every=interval, once=once, on_pass=on_pass, alerts=setup.alerts
        )
    except KeyboardInterrupt:
        err.print("leaksonar: watch stopped; findings and events so far are stored.")


@app.command()
def worker(
    broker: BrokerOption = None,
    db: DbOption = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Shards scanned at once (processes).")] = 1,
) -> None:
    """Scan the shards queued by `scan --distributed` and `beat` into the shared index, until stopped."""
    from leaksonar.run.distributed.app import BrokerError
    from leaksonar.run.distributed.processes import run_worker
    from leaksonar.store.db import StoreError

    try:
        code = run_worker(broker, db, concurrency)
    except (BrokerError, StoreError) as exc:
        fail(str(exc))
    raise typer.Exit(code)


@app.command()
@with_scan_setup
def beat(
    setup: ScanSetup,
    every: Annotated[str, typer.Option(help="Time between passes: 90s, 15m, 1h, 1d.")] = "1h",
    broker: BrokerOption = None,
    shards: ShardsOption = None,
) -> None:
    """Watch TARGETS through the workers: queue a pass now and every --every (Celery beat); the workers
    scan its shards into their index and record its change events."""
    from leaksonar.formats import parse_duration
    from leaksonar.run.distributed.app import BrokerError
    from leaksonar.run.distributed.processes import run_beat

    try:
        interval = parse_duration(every)
    except ValueError as exc:
        fail(f"--every: {exc}")
    try:
        run_beat(broker, setup.space, setup.options, setup.scope, interval, shards)
    except BrokerError as exc:
        fail(str(exc))


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="Leak sample: CSV, JSON or JSON lines; gzip ok.")],
    as_json: JsonFlag = False,
    limit: Annotated[int, typer.Option(help="Rows read at most.")] = 100_000,
) -> None:
    """Check a leak sample before trusting it: what each column holds, checksum validity, whether IDs agree
    with birth dates, genders, ages and places, duplicates, date ranges, and a verdict with its reasons."""
    from leaksonar.verify import reader as verifying  # the validators are heavy: loaded on first use

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


alerts_app = typer.Typer(no_args_is_help=True, help="Deliver change events by webhook, e-mail and Slack.")
app.add_typer(alerts_app, name="alerts")
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Alert rules and channels (TOML).")]


def _alert_config(path: Path) -> AlertConfig:
    from leaksonar.notify.rules import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))


def _print_deliveries(deliveries: Sequence[Delivery], as_json: bool, **extra: int) -> None:
    """One line per delivery (or JSON); exit 1 when any failed after its retries."""
    if as_json:
        typer.echo(json.dumps({"deliveries": [asdict(d) for d in deliveries], **extra}, indent=2))
    for d in [] if as_json else deliveries:
        tries = f"{d.attempts} attempt{'s' if d.attempts != 1 else ''}"
        why = f": {d.error}" if d.error else ""
        out.print(
            f"{d.status:6} {d.channel} (rule {d.rule}) {d.event} after {tries}{why}",
            highlight=False,
            soft_wrap=True,
        )
    if any(d.status != "sent" for d in deliveries):
        raise typer.Exit(1)


@alerts_app.command("test")
def alerts_test(config: ConfigOption, as_json: JsonFlag = False) -> None:
    """Send a sample event (on 203.0.113.7, marked TEST) to every channel in CONFIG."""
    from leaksonar.notify.alerts import send_sample

    _print_deliveries(send_sample(_alert_config(config)), as_json)


@alerts_app.command("send")
def alerts_send(
    config: ConfigOption,
    since: Annotated[
        str | None,
        typer.Option(help="Only events at or after this time: ISO 8601 (2026-11-28) or ago (7d, 24h)."),
    ] = None,
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Deliver stored events to the channels of the rules they match; each event goes once per rule and
    channel, and failed deliveries are tried again on the next run."""
    from leaksonar.formats import parse_since
    from leaksonar.notify.alerts import deliver_events

    try:
        start = parse_since(since) if since is not None else None
    except ValueError as exc:
        fail(f"--since: {exc}")
    settings = _alert_config(config)
    store = open_store(db)
    report = deliver_events(store.events(since=start), settings, store)
    if not as_json:
        err.print(f"{report.sent} sent, {report.failed} failed, {report.already} delivered before")
    _print_deliveries(report.deliveries, as_json, already=report.already)


@app.command()
def report(
    network: Annotated[str | None, typer.Option("--network", help="Report on this CIDR block.")] = None,
    asn: Annotated[int | None, typer.Option("--asn", help="Report on this autonomous system.")] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="Report on organisations whose name contains NAME.")
    ] = None,
    owners: Annotated[
        Path | None,
        typer.Option("--owners", help="Owners file (TOML): network -> organisation, abuse address."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the letters.")] = Path("reports"),
    formats: Annotated[str, typer.Option("--format", help="md, html or md,html.")] = "md,html",
    force: Annotated[
        bool, typer.Option("--force", help="Report again services reported within their reminder interval.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write the letters but do not record them as sent.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Write disclosure letters, one per owner (Markdown and HTML), for the exposed services in a network,
    ASN or organisation; services reported recently are skipped until their reminder is due."""
    from leaksonar import report as reporting  # Jinja2 and templates: loaded on first use
    from leaksonar.scan.engine import utc_now

    if sum(x is not None for x in (network, asn, org)) != 1:
        fail("give exactly one of --network CIDR, --asn N, --org NAME")
    try:
        selection = reporting.Selection(
            network=ipaddress.IPv4Network(network, strict=False) if network else None, asn=asn, org=org
        )
    except ValueError:
        fail(f"--network {network!r} is not an IPv4 network (CIDR)")
    try:
        fmts = reporting.parse_formats(formats)
        table = reporting.load_owners(owners)
    except (reporting.ReportError, reporting.OwnersError) as exc:
        fail(str(exc))
    store = open_store(db)
    now = utc_now()
    plans = reporting.plan(store, selection, table, now, force)
    try:
        reporting.write_reports(store, plans, out_dir, fmts, now, record=not dry_run)
    except reporting.ReportError as exc:
        fail(str(exc))
    if not plans:
        err.print("no exposed services in the index match; nothing to report")
    for plan in plans:
        contact = plan.owner.abuse or "no abuse contact known"
        out.print(f"{plan.owner.org} <{contact}>: {len(plan.due)} service(s) to report", highlight=False)
        for path in plan.files:
            out.print(f"  wrote {path}", highlight=False)
        for row, reason in plan.skipped:
            out.print(
                f"  skipped {row['ip']}:{row['port']}: {reason}",
                highlight=False,
            )


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on: an IP address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port to listen on.")] = 8080,
    anonymous: Annotated[
        str, typer.Option(help="Level of requests without an API key: public or analyst.")
    ] = "public",
    rate_limit: Annotated[
        str,
        typer.Option(help="Requests allowed per API key (per client address without one): N/minute."),
    ] = "600/minute",
) -> None:
    """Serve the web UI and the REST API (OpenAPI at /docs) over the index."""
    import socket

    import uvicorn

    from leaksonar.web.app import create_app

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        fail(f"--host {host!r} is not an IP address (e.g. 127.0.0.1)")
    try:
        web = create_app(open_store(db), anonymous=anonymous, rate_limit=rate_limit)
    except ValueError as exc:
        fail(str(exc))
    listener = socket.socket(socket.AF_INET6 if address.version == 6 else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    if not address.is_loopback:
        err.print(f"warning: serving on {host}, reachable from other machines", highlight=False)
    url = f"http://[{host}]:{port}/" if address.version == 6 else f"http://{host}:{port}/"
    typer.echo(f"leaksonar: serving {url} (API docs {url}docs); Ctrl-C to stop")
    uvicorn.Server(uvicorn.Config(web, log_level="warning")).run(sockets=[listener])


keys_app = typer.Typer(no_args_is_help=True, help="API keys for the web API and UI (levels public, analyst).")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for (unique).")],
    level: Annotated[
        str, typer.Option(help="public or analyst (analysts see critical findings).")
    ] = "public",
    db: DbOption = None,
) -> None:
    """Create an API key and print it once (only its SHA-256 is stored)."""
    from leaksonar.web.keys import ApiKeyError, create_key

    try:
        key = create_key(open_store(db), name, level)
    except ApiKeyError as exc:
        fail(str(exc))
    typer.echo(key)
    err.print(f"key {name!r} ({level}) created; it is not shown again", highlight=False)


@keys_app.command("list")
def keys_list(db: DbOption = None, as_json: JsonFlag = False) -> None:
    """List API keys: name, level, created, revoked (never the key)."""
    from leaksonar.web.keys import list_keys

    rows = list_keys(open_store(db))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = f"revoked {row['revoked']}" if row["revoked"] else "valid"
        typer.echo(f"{row['name']}\t{row['level']}\tcreated {row['created']}\t{state}")
    if not rows:
        err.print("no API keys")


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")], db: DbOption = None) -> None:
    """Revoke an API key: requests with it are refused (401) from now on."""
    from leaksonar.web.keys import ApiKeyError, revoke_key

    try:
        revoke_key(open_store(db), name)
    except ApiKeyError as exc:
        fail(str(exc))
    err.print(f"key {name!r} revoked", highlight=False)


db_app = typer.Typer(no_args_is_help=True, help="The index's schema (migrations).")
app.add_typer(db_app, name="db")


@db_app.command("current")
def db_current(db: DbOption = None) -> None:
    """Print the index's schema revision and whether it is this version's, without changing it."""
    from leaksonar.store.db import StoreError, schema_revision
    from leaksonar.store.migrations import HEAD, REVISIONS

    try:
        revision = schema_revision(db)
    except StoreError as exc:
        fail(str(exc))
    if revision == HEAD:
        typer.echo(f"{revision} (current)")
    elif revision is None or revision in REVISIONS:
        typer.echo(f"{revision or 'none'} (opening it, or `leaksonar db upgrade`, migrates it to {HEAD})")
    else:
        typer.echo(f"{revision} (from a newer leaksonar; this one has {HEAD})")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Migrate the index to this version's schema, keeping its rows (any command opening it does too)."""
    from leaksonar.store.migrations import HEAD

    open_store(db).engine.dispose()
    typer.echo(f"{HEAD} (current)")


def main() -> None:
    try:
        app()
    except Exception as exc:  # an internal error: one line, exit 1 (LEAKSONAR_DEBUG=1 for the traceback)
        if os.environ.get("LEAKSONAR_DEBUG"):
            raise
        typer.echo(f"leaksonar: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    finally:
        # what the command left is collected now (an index's connections close, its WAL checkpointed) and
        # the rest frozen: the interpreter's own collections at exit need not walk it (~60 ms less)
        gc.collect()
        gc.freeze()
