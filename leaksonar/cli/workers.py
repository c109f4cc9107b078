"""The distributed scan's long-running processes: `leaksonar worker` and `leaksonar beat`."""

from __future__ import annotations

from typing import Annotated

import typer

from leaksonar.cli.common import DbOption, fail
from leaksonar.cli.options import BrokerOption, ScanSetup, ShardsOption, with_scan_setup


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
