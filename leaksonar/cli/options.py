"""The options `scan`, `watch` and `beat` share: what to scan, how, and into which index."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

from leaksonar.cli.common import DbOption, alert_config, fail, open_store
from leaksonar.cli.render import err
from leaksonar.model import Limits
from leaksonar.run.job import ResumeError, ScanJob, resume_job
from leaksonar.scan.engine import ScanOptions
from leaksonar.scan.enrich import ASN_ENV, GEO_ENV, EnrichError, configured
from leaksonar.scan.enrich import check as check_mmdbs
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
    from leaksonar.notify.rules import AlertConfig

DEFAULT_WORKERS = min(os.cpu_count() or 1, 8)


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
    rules = alert_config(alerts) if alerts is not None else None
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
    return ScanSetup(space, options, db, rules, guard)


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
    alerts = alert_config(given["alerts"]) if given["alerts"] is not None else None
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
