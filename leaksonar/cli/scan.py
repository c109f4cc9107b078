"""`leaksonar scan` and `leaksonar watch`: scan targets here, once or on a schedule."""

from __future__ import annotations

import ipaddress
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from leaksonar.cli import render
from leaksonar.cli.common import fail, open_store
from leaksonar.cli.options import BrokerOption, ScanSetup, ShardsOption, with_scan_setup
from leaksonar.cli.render import ScanBar, err, out
from leaksonar.model import Event
from leaksonar.run.job import new_job, run_job, start_workers
from leaksonar.scan.engine import ScanProgress
from leaksonar.scan.workers import stop_workers

if TYPE_CHECKING:
    from leaksonar.store.db import Store


def _jsonl_handle(stack: ExitStack, jsonl: str | None) -> TextIO | None:
    if jsonl is None:
        return None
    if jsonl == "-":
        return sys.stdout
    try:
        return stack.enter_context(open(jsonl, "w", encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot write {jsonl}: {exc.strerror}")


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
        store.findings.of_scan(scan_id), key=lambda f: (not f.exposed, ipaddress.IPv4Address(f.ip), f.port)
    )
    if findings:
        table_console.print(render.findings_table(findings[:200]))
    table_console.print(
        f"scan {scan_id}: {stats.probes:,} address/port pairs in {elapsed:.2f} s "
        f"({stats.probes / max(elapsed, 1e-9):,.0f}/s): {stats.open} open, {progress.services} services, "
        f"[bold]{progress.exposed} exposed[/]"
    )


@with_scan_setup
def watch(
    setup: ScanSetup,
    every: Annotated[
        str, typer.Option(help="Time from the start of one pass to the next: 90s, 15m, 1h, 1h30m, 1d.")
    ] = "1h",
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (for cron).")] = False,
) -> None:
    """Scan TARGETS again on a schedule, with the options of `scan`; print each pass's change events."""
    from leaksonar.cli.render import event_line
    from leaksonar.formats import parse_duration
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
