"""`leaksonar scan` and `leaksonar watch`: scan targets here, once or on a schedule."""

from __future__ import annotations

import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from leaksonar.cli import render
from leaksonar.cli.common import (
    DbOption,
    alert_config,
    fail,
    needs_extra,
    open_store,
    parse_every,
    stop_on_sigterm,
)
from leaksonar.cli.logs import LogLevel, LogLevelOption, setup_logging
from leaksonar.cli.options import (
    DEFAULT,
    AlertsOption,
    AsnDbOption,
    BrokerOption,
    ConcurrencyOption,
    ExcludeFileOption,
    GeoDbOption,
    InputListOption,
    PerHostOption,
    PortsOption,
    RateOption,
    ReadTimeoutOption,
    ResolveOption,
    RetriesOption,
    ScanArguments,
    ScanPlan,
    ScopeOption,
    SeedOption,
    ShardsOption,
    TargetsArgument,
    TimeoutOption,
    WorkersOption,
    inspection_options,
    scan_plan,
)
from leaksonar.cli.render import ScanBar, err, out
from leaksonar.inputs import InputError, file_stamp
from leaksonar.sanitize import for_terminal
from leaksonar.targets import AddressFilter, Scope, TargetError, parse_ports, text_key
from leaksonar.terminal import echo

if TYPE_CHECKING:
    from rich.console import Console

    from leaksonar.model import Event
    from leaksonar.notify.rules import AlertConfig
    from leaksonar.run.job import ScanJob, ScanOutcome
    from leaksonar.run.local import LocalScan
    from leaksonar.run.openfrom import OpenFromCounts
    from leaksonar.scan.engine import ScanOptions, ScanProgress

log = logging.getLogger("leaksonar.watch")


def _jsonl_handle(stack: ExitStack, jsonl: str | None) -> TextIO | None:
    if jsonl is None:
        return None
    if jsonl == "-":
        return sys.stdout
    try:
        return stack.enter_context(open(jsonl, "w", encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot write {jsonl}: {exc.strerror}")


def scan(
    targets: TargetsArgument = None,
    ports: PortsOption = None,
    input_list: InputListOption = None,
    exclude_file: ExcludeFileOption = None,
    resolve: ResolveOption = None,
    scope: ScopeOption = None,
    db: DbOption = None,
    rate: RateOption = None,
    concurrency: ConcurrencyOption = DEFAULT.concurrency,
    per_host: PerHostOption = DEFAULT.per_host,
    timeout: TimeoutOption = DEFAULT.timeout,
    retries: RetriesOption = DEFAULT.retries,
    read_timeout: ReadTimeoutOption = DEFAULT.read_timeout,
    workers: WorkersOption = DEFAULT.workers,
    seed: SeedOption = None,
    geo_db: GeoDbOption = None,
    asn_db: AsnDbOption = None,
    alerts: AlertsOption = None,
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
    open_from: Annotated[
        str | None,
        typer.Option(
            "--open-from",
            metavar="FILE|-",
            help="Identify and inspect the open ports another scanner found (masscan, zmap, naabu, nmap, "
            "zgrab2 output; '-': standard input, read as it comes) instead of discovering them.",
        ),
    ] = None,
    skip_bad_lines: Annotated[
        bool,
        typer.Option("--skip-bad-lines", help="With --open-from: count and skip malformed lines, not stop."),
    ] = False,
) -> None:
    """Scan TARGETS for exposed databases, inspect them read-only and record the findings."""
    from leaksonar.run import local
    from leaksonar.run.job import ResumeError, ScanInterrupted
    from leaksonar.scan.engine import RecordingFailed
    from leaksonar.store import StoreError

    given = ScanArguments.of(locals())
    if resume is not None and (again := given.changed()):
        fail(f"--resume runs scan {resume} on with its own targets and options; drop {', '.join(again)}")
    if resume is not None and distributed:
        fail("--resume does not combine with --distributed")
    if skip_bad_lines and open_from is None:
        fail("--skip-bad-lines goes with --open-from")
    reading = (
        _open_from(given, open_from, skip_bad_lines, distributed, resume, db, alerts) if open_from else None
    )
    plan = scan_plan(given, alerts) if resume is None and reading is None else None
    guard = _resume_scope() if resume is not None else None
    stop_on_sigterm()
    setup_logging(LogLevel.warning)  # a finding that cannot be stored: one escaped line on stderr
    try:
        with ExitStack() as stack:
            handle = _jsonl_handle(stack, jsonl)
            started = time.monotonic()
            prepared = None
            if plan is None and reading is None:
                prepared = local.reopen(resume, db, guard)  # type: ignore[arg-type]
                rules = alert_config(alerts) if alerts is not None else None
                if prepared.job.source.get("kind") == "open-from":
                    reading = _reread(prepared.job, guard, db, rules)
                else:
                    plan = ScanPlan(prepared.job.space, prepared.job.options, None, rules)
            elif plan is not None and not distributed:
                prepared = local.start(plan.space, plan.options, db)
            if reading is not None:
                outcome = _scan_open_ports(stack, reading, prepared, handle, quiet)
            if plan is not None:
                bar = ScanBar(plan.space.size, enabled=err.is_terminal and not quiet)
                stack.enter_context(bar.progress)
                if prepared is None:
                    outcome = _distributed(plan, db, broker, shards, handle, bar.update)
                else:
                    outcome = local.run(prepared, jsonl=handle, on_progress=bar.update, alerts=plan.alerts)
    except (StoreError, ResumeError, InputError) as exc:
        fail(str(exc))
    except RecordingFailed as exc:
        fail(f"scan failed: {exc}", code=1)
    except ScanInterrupted as exc:
        hint = f"; continue with `leaksonar scan --resume {exc.scan_id}`" if exc.resumable else ""
        err.print(f"leaksonar: interrupted; findings so far are stored{hint}.")
        raise typer.Exit(130) from None
    if not quiet:
        _summary(outcome, time.monotonic() - started, err if jsonl == "-" else out)
        if reading is not None:
            echo(for_terminal(reading.counts.describe(reading.source)), err=True)


OPEN_FROM_OPTIONS = (
    "--ports", "--exclude-file", "--scope", "--timeout", "--retries", "--read-timeout", "--geo-db", "--asn-db"
)  # fmt: skip
"""The shared options that apply to open ports read with --open-from (the others are discovery's)."""


@dataclass(frozen=True, slots=True)
class OpenFromReading:
    """Open ports to read with --open-from, checked: the file (`-`: standard input), how, and what it held
    when read through first (a regular file: `total` ports to scan; a stream: None)."""

    source: str
    guard: AddressFilter
    options: ScanOptions
    default_port: int | None
    skip_bad_lines: bool
    total: int | None
    db: str | None
    alerts: AlertConfig | None
    counts: OpenFromCounts
    made: dict[str, Any]
    """The scan's source (`ScanRow.source`)."""


def _open_from(
    given: ScanArguments,
    source: str,
    skip_bad_lines: bool,
    distributed: bool,
    resume: str | None,
    db: str | None,
    alerts: Path | None,
) -> OpenFromReading:
    """The checked --open-from reading (see `_reading`)."""
    refused = [name for name in given.changed() if name not in OPEN_FROM_OPTIONS]
    refused += ["--distributed"] * distributed + ["--resume"] * (resume is not None)
    if refused:
        fail(f"--open-from scans open ports found elsewhere: drop {', '.join(refused)} (targets, discovery)")
    default_port = None
    try:
        if given.ports is not None:
            ports = parse_ports(given.ports)
            if len(ports) != 1:
                fail("--open-from takes one port with -p: the port of lines that give none (zmap's -p)")
            default_port = ports[0]
        guard = AddressFilter(Scope.from_env(given.scope), given.exclude_file or [])
    except (TargetError, InputError) as exc:
        fail(str(exc))
    options = replace(inspection_options(given), timeout=given.timeout, retries=given.retries)
    rules = alert_config(alerts) if alerts is not None else None
    made = {
        "kind": "open-from",
        "format": None,
        "file": source,
        "default_port": default_port,
        "skip_bad_lines": skip_bad_lines,
        "exclude_files": [str(path) for path in given.exclude_file or []],
    }
    return _reading(made, guard, options, db, rules)


def _reading(
    made: dict[str, Any],
    guard: AddressFilter,
    options: ScanOptions,
    db: str | None,
    rules: AlertConfig | None,
) -> OpenFromReading:
    """The --open-from reading of the source `made` describes (`ScanRow.source`); a regular file is stamped
    and read through once here, so that an address outside the scope or a bad line refuses the run before
    any connection."""
    from leaksonar.run.openfrom import OpenFromCounts, admitted_ports

    source, default_port, skip_bad_lines = made["file"], made["default_port"], made["skip_bad_lines"]
    total = None
    if source != "-" and _is_regular(source):
        counts = OpenFromCounts()
        try:
            stamp = file_stamp(source)
            with open(source, "rb") as handle:
                for _ in admitted_ports(
                    handle,
                    source,
                    guard,
                    counts,
                    default_port=default_port,
                    skip_bad_lines=skip_bad_lines,
                    then="nothing was scanned",
                ):
                    pass
        except OSError as exc:
            fail(str(InputError(source, None, f"cannot read: {exc.strerror}")))
        except InputError as exc:
            fail(str(exc))
        total = counts.admitted
        made = {**made, "format": counts.read.format, "stamp": stamp}
    return OpenFromReading(
        source, guard, options, default_port, skip_bad_lines, total, db, rules, OpenFromCounts(), made
    )


def _reread(job: ScanJob, scope: Scope | None, db: str | None, rules: AlertConfig | None) -> OpenFromReading:
    """The reading of the file an unfinished --open-from scan `job` read (found unchanged), with its
    options and opt-out lists, in today's `scope`."""
    made = job.source
    try:
        guard = AddressFilter(scope, [Path(path) for path in made.get("exclude_files", [])])
    except InputError as exc:
        fail(str(exc))
    return _reading(made, guard, job.options, db, rules)


def _is_regular(path: str) -> bool:
    """Whether `path` is a regular file (read twice); a pipe or a device is read once, as a stream."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError as exc:
        fail(str(InputError(path, None, f"cannot read: {exc.strerror}")))


def _scan_open_ports(
    stack: ExitStack, reading: OpenFromReading, prepared: LocalScan | None, jsonl: TextIO | None, quiet: bool
) -> ScanOutcome:
    """Scan the open ports of `reading` (a file read again, or standard input as it comes) as a new scan,
    or as the unfinished scan `prepared`, from its checkpoint."""
    from leaksonar.run import openfrom

    scan = prepared or openfrom.start(reading.made, reading.options, reading.db)
    start = scan.job.marks[0].position
    bar = ScanBar(reading.total, enabled=err.is_terminal and not quiet)
    stack.enter_context(bar.progress)
    return openfrom.run(
        scan,
        _admitted(reading, start),
        reading.counts,
        jsonl=jsonl,
        on_progress=bar.update,
        alerts=reading.alerts,
    )


def _admitted(reading: OpenFromReading, start: int) -> Iterator[tuple[str, int, int]]:
    """The ports of `reading` to scan from position `start` on, its input opened and closed by the thread
    that reads it: at exit (Ctrl-C) nothing waits for a read blocked on a pipe (sys.stdin's own reader
    would be closed then)."""
    from leaksonar.run.openfrom import admitted_ports

    source = reading.source
    try:
        file = sys.stdin.fileno() if source == "-" else source
        handle = open(file, "rb", closefd=source != "-")  # noqa: SIM115 (closed below, by `with`)
    except OSError as exc:
        raise InputError(source, None, f"cannot read: {exc.strerror}") from None
    with handle:
        yield from admitted_ports(
            handle,
            source,
            reading.guard,
            reading.counts,
            default_port=reading.default_port,
            skip_bad_lines=reading.skip_bad_lines,
            then="the scan stopped; what was inspected before is stored",
            start=start,
        )


def _resume_scope() -> Scope | None:
    """The scope a resumed scan's recorded targets must lie in (LEAKSONAR_SCOPE; --scope is refused
    with --resume like any other option)."""
    try:
        return Scope.from_env(None)
    except TargetError as exc:
        fail(str(exc))


def _distributed(
    plan: ScanPlan,
    db: str | None,
    broker: str | None,
    shards: int | None,
    jsonl: TextIO | None,
    on_progress: Callable[[ScanProgress], None],
) -> ScanOutcome:
    with needs_extra("distributed", "scan --distributed"):
        from leaksonar.run.distributed.app import BrokerError
        from leaksonar.run.distributed.submit import ShardError, distributed_scan
    try:
        return distributed_scan(
            plan.space,
            plan.options,
            plan.scope,
            db,
            broker=broker,
            shards=shards,
            jsonl=jsonl,
            on_progress=on_progress,
            alerts=plan.alerts,
        )
    except BrokerError as exc:
        fail(str(exc))
    except ShardError as exc:
        fail(str(exc), 1)


def _summary(outcome: ScanOutcome, elapsed: float, console: Console) -> None:
    """The scan's findings, exposed first (200 at most), and its counters."""
    progress, stats = outcome.progress, outcome.progress.discovery
    findings = sorted(
        outcome.store.findings.of_scan(outcome.scan_id),
        key=lambda f: (not f.exposed, text_key(f.ip), f.port),
    )
    if findings:
        console.print(render.findings_table(findings[:200]))
    console.print(
        render.scan_line(
            outcome.scan_id, stats.probes, elapsed, stats.open, progress.services, progress.exposed
        )
    )


def watch(
    targets: TargetsArgument = None,
    ports: PortsOption = None,
    input_list: InputListOption = None,
    exclude_file: ExcludeFileOption = None,
    resolve: ResolveOption = None,
    scope: ScopeOption = None,
    db: DbOption = None,
    rate: RateOption = None,
    concurrency: ConcurrencyOption = DEFAULT.concurrency,
    per_host: PerHostOption = DEFAULT.per_host,
    timeout: TimeoutOption = DEFAULT.timeout,
    retries: RetriesOption = DEFAULT.retries,
    read_timeout: ReadTimeoutOption = DEFAULT.read_timeout,
    workers: WorkersOption = DEFAULT.workers,
    seed: SeedOption = None,
    geo_db: GeoDbOption = None,
    asn_db: AsnDbOption = None,
    alerts: AlertsOption = None,
    every: Annotated[
        str, typer.Option(help="Time from the start of one pass to the next: 90s, 15m, 1h, 1h30m, 1d.")
    ] = "1h",
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (for cron).")] = False,
    log_level: LogLevelOption = LogLevel.info,
) -> None:
    """Scan TARGETS again on a schedule, with the options of `scan`; print each pass's change events."""
    from leaksonar.run.watch import watch as watching

    given = ScanArguments.of(locals())
    plan = scan_plan(given, alerts)
    interval = parse_every(every)
    setup_logging(log_level)
    store = open_store(db, create=True)
    stop_on_sigterm()

    def on_pass(scan_id: str, progress: ScanProgress, found: list[Event]) -> None:
        for event in found:
            out.print(render.event_line(event), soft_wrap=True)
        log.info(
            "scan %s: %d services, %d exposed, %d change event%s",
            scan_id, progress.services, progress.exposed, len(found), "s" * (len(found) != 1),
        )  # fmt: skip

    try:
        watching(
            plan.space, plan.options, store, every=interval, once=once, on_pass=on_pass, alerts=plan.alerts
        )
    except KeyboardInterrupt:
        log.info("watch stopped; findings and events so far are stored")
