"""The distributed scan's long-running processes: `leaksonar worker` and `leaksonar beat`."""

from __future__ import annotations

from typing import Annotated

import typer

from leaksonar.cli.common import DbOption, fail, needs_extra, number, parse_every, whole
from leaksonar.cli.logs import LogLevel, LogLevelOption, setup_logging
from leaksonar.cli.options import (
    DEFAULT,
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
    ScopeOption,
    SeedOption,
    ShardsOption,
    TargetsArgument,
    TimeoutOption,
    WorkersOption,
    scan_plan,
)
from leaksonar.run.distributed.options import HEARTBEAT, HEARTBEAT_ENV, LEASE_ENV, LEASE_TTL, LeaseSettings


def worker(
    broker: BrokerOption = None,
    db: DbOption = None,
    concurrency: Annotated[int, whole("Shards scanned at once (processes).", least=1, most=64)] = 1,
    lease_ttl: Annotated[
        float,
        number(
            "Seconds a shard's lease lasts without a heartbeat: a dead worker's shard is queued again "
            "this long after its last one.",
            least=1,
            envvar=LEASE_ENV,
        ),
    ] = LEASE_TTL,
    heartbeat: Annotated[
        float,
        number("Seconds between renewals of a running shard's lease.", least=0.1, envvar=HEARTBEAT_ENV),
    ] = HEARTBEAT,
    log_level: LogLevelOption = LogLevel.info,
) -> None:
    """Scan the shards queued by `scan --distributed` and `beat` into the shared index, until stopped."""
    with needs_extra("distributed", "worker"):
        from leaksonar.run.distributed.app import BrokerError
        from leaksonar.run.distributed.processes import run_worker
    from leaksonar.store import StoreError

    try:
        lease = LeaseSettings(lease_ttl, heartbeat)
    except ValueError as exc:
        fail(str(exc))
    setup_logging(log_level, "celery")
    try:
        code = run_worker(broker, db, concurrency, lease, log_level.upper())
    except (BrokerError, StoreError) as exc:
        fail(str(exc))
    raise typer.Exit(code)


def beat(
    targets: TargetsArgument = None,
    ports: PortsOption = None,
    input_list: InputListOption = None,
    exclude_file: ExcludeFileOption = None,
    resolve: ResolveOption = None,
    scope: ScopeOption = None,
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
    every: Annotated[str, typer.Option(help="Time between passes: 90s, 15m, 1h, 1d.")] = "1h",
    broker: BrokerOption = None,
    shards: ShardsOption = None,
    log_level: LogLevelOption = LogLevel.info,
) -> None:
    """Watch TARGETS through the workers: queue a pass now and every --every (Celery beat); the workers
    scan its shards into their index and record its change events."""
    with needs_extra("distributed", "beat"):
        from leaksonar.run.distributed.app import BrokerError
        from leaksonar.run.distributed.processes import run_beat

    given = ScanArguments.of(locals())
    plan = scan_plan(given, alerts=None)
    interval = parse_every(every)
    setup_logging(log_level, "celery")
    try:
        run_beat(broker, plan.space, plan.options, plan.scope, interval, shards, log_level.upper())
    except BrokerError as exc:
        fail(str(exc))
