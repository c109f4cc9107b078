"""The options `scan`, `watch` and `beat` share, declared once: an annotated type per option, a dataclass
of their values (whose defaults are the options' defaults) and the check that turns them into a plan."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leaksonar.cli.common import MAX_WHOLE, alert_config, fail, number, whole
from leaksonar.cli.render import err
from leaksonar.inputs import InputError
from leaksonar.model import Limits
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
    parse_resolve,
)

if TYPE_CHECKING:
    from leaksonar.notify.rules import AlertConfig

TargetsArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Addresses, CIDR blocks (127.77.0.0/24), ranges (a-b) or host names (looked up)."),
]
PortsOption = Annotated[
    str | None, typer.Option("-p", "--ports", help="Ports: 6379,5432,1-1024 [default: database ports].")
]
InputListOption = Annotated[
    list[Path] | None, typer.Option("-iL", "--input-list", help="File of targets, one or more a line.")
]
ExcludeFileOption = Annotated[
    list[Path] | None,
    typer.Option("--exclude-file", help="Opt-out list of addresses/CIDRs never to touch (always applied)."),
]
ResolveOption = Annotated[
    list[str] | None,
    typer.Option("--resolve", help="NAME:ADDR: NAME stands for ADDR, not looked up (repeatable)."),
]
ScopeOption = Annotated[
    str | None,
    typer.Option(
        "--scope", help=f"Allowed space, e.g. 127.0.0.0/8; a target outside is refused [env {SCOPE_ENV}]."
    ),
]
RateOption = Annotated[
    float | None,
    number("Connection attempts per second (default: unlimited).", least=0, most=1e9, above=True),
]
ConcurrencyOption = Annotated[int, whole("Connection attempts in flight.", least=1, most=60000)]
PerHostOption = Annotated[int, whole("Connection attempts in flight per address.", least=1, most=60000)]
TimeoutOption = Annotated[float, number("Seconds to wait for a TCP handshake.", least=0.01)]
RetriesOption = Annotated[int, whole("Extra attempts for silent ports.", least=0, most=10)]
ReadTimeoutOption = Annotated[
    float, number("Seconds allowed for each read while identifying/inspecting.", least=0.05)
]
WorkersOption = Annotated[
    int,
    whole(
        "Scanning processes, each discovering and inspecting a shard; limits are shared"
        " [default: one per core].",
        least=1,
        most=64,
    ),
]
SeedOption = Annotated[int | None, whole("Seed of the pseudo-random target order.", least=-MAX_WHOLE - 1)]
GeoDbOption = Annotated[
    str | None,
    typer.Option("--geo-db", help=f"Country/City database (.mmdb, MaxMind format) [env {GEO_ENV}]."),
]
AsnDbOption = Annotated[
    str | None, typer.Option("--asn-db", help=f"ASN database (.mmdb, MaxMind format) [env {ASN_ENV}].")
]
AlertsOption = Annotated[
    Path | None,
    typer.Option("--alerts", help="Deliver the change events by these alert rules and channels (TOML)."),
]
BrokerOption = Annotated[
    str | None,
    typer.Option("--broker", help="Redis broker of the workers: redis://HOST:PORT/N [env LEAKSONAR_BROKER]."),
]
ShardsOption = Annotated[
    int | None, whole("Shards to cut the space into [default: by size].", "--shards", least=1, most=1_000_000)
]


ENGINE = ScanOptions()
"""The engine's defaults, which the command line's are."""


@dataclass(frozen=True, slots=True)
class ScanArguments:
    """What to scan and how, as given on the command line (unchecked)."""

    targets: list[str] | None = None
    ports: str | None = None
    input_list: list[Path] | None = None
    exclude_file: list[Path] | None = None
    resolve: list[str] | None = None
    scope: str | None = None
    rate: float | None = None
    concurrency: int = ENGINE.concurrency
    per_host: int = ENGINE.per_host
    timeout: float = ENGINE.timeout
    retries: int = ENGINE.retries
    read_timeout: float = ENGINE.limits.timeout
    workers: int = min(os.cpu_count() or 1, 8)
    seed: int | None = None
    geo_db: str | None = None
    asn_db: str | None = None

    @classmethod
    def of(cls, parameters: Mapping[str, Any]) -> ScanArguments:
        """The shared options among a command's `parameters` (by name: the command passes `locals()`)."""
        return cls(**{field.name: parameters[field.name] for field in fields(cls)})

    def changed(self) -> list[str]:
        """The options given other values than their defaults, as the user wrote them (TARGETS, --rate)."""
        return [
            "TARGETS" if field.name == "targets" else f"--{field.name.replace('_', '-')}"
            for field in fields(self)
            if getattr(self, field.name) != getattr(DEFAULT, field.name)
        ]


DEFAULT = ScanArguments()
"""The options' defaults (the commands' signatures take theirs from here)."""


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """What `scan`, `watch` and `beat` scan and how, checked."""

    space: TargetSpace
    options: ScanOptions
    scope: Scope | None
    alerts: AlertConfig | None


def scan_plan(given: ScanArguments, alerts: Path | None) -> ScanPlan:
    """Check the scan options and build the target space; bad input fails (before any packet)."""
    try:
        guard = Scope.from_env(given.scope)
        space = build_space(
            given.targets or [],
            parse_ports(given.ports) if given.ports else default_ports(),
            list_files=given.input_list or [],
            exclude_files=given.exclude_file or [],
            scope=guard,
            seed=given.seed,
            resolve=[parse_resolve(spec) for spec in given.resolve or []],
            warn=lambda warning: err.print(f"leaksonar: warning: {warning}"),
        )
    except (TargetError, InputError) as exc:
        fail(str(exc))
    rules = alert_config(alerts) if alerts is not None else None
    options = replace(
        inspection_options(given),
        rate=given.rate,
        concurrency=given.concurrency,
        per_host=given.per_host,
        timeout=given.timeout,
        retries=given.retries,
        workers=given.workers,
    )
    return ScanPlan(space, options, guard, rules)


def inspection_options(given: ScanArguments) -> ScanOptions:
    """The engine's options for identifying and inspecting (read timeout, enrichment databases, checked);
    discovery's are the defaults."""
    geo_db, asn_db = configured(given.geo_db, GEO_ENV), configured(given.asn_db, ASN_ENV)
    try:
        for warning in check_mmdbs(geo_db, asn_db):
            err.print(f"leaksonar: warning: {warning}")
    except EnrichError as exc:
        fail(str(exc))
    return ScanOptions(limits=Limits(timeout=given.read_timeout), geo_db=geo_db, asn_db=asn_db)
