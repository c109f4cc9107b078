"""What the lab runs: one entry per service, each on its own loopback address (base + offset).

`SERVICES` is the core table below plus the `SERVICES` declared by the modules of the registered
kinds (`leaksonar.lab.kinds.MODULES`), ordered by offset. It is resolved on first use, so importing this
module loads no kind module and no database driver.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from leaksonar.lab import kinds
from leaksonar.model import Auth

Kind = str
"""A protocol name, as the scanner reports it; `leaksonar.lab.kinds.kind(protocol)` runs its servers."""
DEFAULT_BASE = "127.77.0.0"
LAB_DOMAIN = "example.lab"
"""The domain the lab's TLS certificates name (never resolved: tests pass addresses)."""
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


class LabError(Exception):
    """The lab cannot do what was asked; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class TlsSpec:
    """A service behind TLS: the certificate the lab makes for it at `lab up` and what it stands for."""

    hosts: tuple[str, ...]
    """Host labels under `LAB_DOMAIN` the certificate names (the first is the manifest's "hostname")."""
    twin: str
    """The plaintext service holding the same data."""
    required: bool
    """The server refuses plaintext on this port."""
    key: str = "ec"
    """"ec" (ECDSA P-256) or "rsa" (RSA 2048)."""
    self_signed: bool = False
    """Signed by its own key, not by the lab CA."""
    expired: bool = False
    """Valid until yesterday."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"{host}.{LAB_DOMAIN}" for host in self.hosts)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    offset: int
    port: int
    protocol: Kind
    """What the scanner reports (the manifest's "protocol")."""
    auth: Auth
    tls: TlsSpec | None = None
    """Set for a service behind TLS."""
    kind: Kind | None = None
    """The registry key of the kind that runs the service when it is not `protocol` (a TLS proxy)."""

    @property
    def runner(self) -> Kind:
        """The registry key of the kind that starts, stops and recognises the server."""
        return self.kind or self.protocol


# Offsets 1..10: the core kinds below; 11..40: reserved for the kinds being added (see kinds/__init__.py);
# 41..60: TLS variants of services (declared by the kind modules that run them).
CORE_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("redis-open", 1, 6379, "redis", "none"),
    ServiceSpec("redis-auth", 2, 6379, "redis", "required"),
    ServiceSpec("postgres-trust", 3, 5432, "postgresql", "none"),
    ServiceSpec("postgres-password", 4, 5432, "postgresql", "required"),
    ServiceSpec("mariadb-open", 5, 3306, "mysql", "none"),
    ServiceSpec("mariadb-password", 6, 3306, "mysql", "required"),
    ServiceSpec("memcached", 7, 11211, "memcached", "none"),
    # Attacked, as the victims of the public ransom waves were (the manifest says how: "attack").
    ServiceSpec("redis-attacked", 8, 6379, "redis", "none"),
    ServiceSpec("mariadb-ransomed", 9, 3306, "mysql", "none"),
    ServiceSpec("postgres-ransomed", 10, 5432, "postgresql", "none"),
)


@cache
def services() -> tuple[ServiceSpec, ...]:
    """Every lab service: the core table plus the services the registered kind modules declare, by offset.
    $LEAKSONAR_LAB_KINDS (protocols, comma-separated) keeps only the services of those kinds."""
    wanted = [p.strip() for p in os.environ.get("LEAKSONAR_LAB_KINDS", "").split(",") if p.strip()]
    unknown = sorted(set(wanted) - set(kinds.MODULES))
    if unknown:
        raise LabError(f"LEAKSONAR_LAB_KINDS names no registered lab kind: {', '.join(unknown)}")
    protocols = wanted or list(kinds.MODULES)
    table = [s for s in CORE_SERVICES if s.protocol in protocols]
    for protocol in protocols:
        table += getattr(kinds.module(protocol), "SERVICES", ())
    for field in ("name", "offset"):
        values = [getattr(s, field) for s in table]
        clashes = sorted({str(v) for v in values if values.count(v) > 1})
        if clashes:
            raise LabError(f"lab services share a {field}: {', '.join(clashes)}")
    return tuple(sorted(table, key=lambda s: s.offset))


def __getattr__(name: str) -> Any:
    if name == "SERVICES":
        return services()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_base(base: str) -> ipaddress.IPv4Address:
    """The base address, if every lab address derived from it stays inside 127.0.0.0/8."""
    try:
        address = ipaddress.IPv4Address(base)
    except ValueError:
        raise LabError(f"base {base!r} is not an IPv4 address") from None
    if address not in LOOPBACK or address + max(s.offset for s in services()) not in LOOPBACK:
        raise LabError(f"base {base} is outside 127.0.0.0/8: the lab runs on loopback only")
    return address


def service_ip(base: str, spec: ServiceSpec) -> str:
    return str(check_base(base) + spec.offset)


def neighbour_ip(ip: str, own: ServiceSpec, other: ServiceSpec) -> str:
    """The address of service `other` in the lab where service `own` listens on `ip`."""
    return str(ipaddress.IPv4Address(ip) - own.offset + other.offset)


def select(names: Iterable[str] | None) -> tuple[ServiceSpec, ...]:
    """The services called `names` (all of them for None), in table order."""
    table = services()
    if names is None:
        return table
    wanted = set(names)
    unknown = wanted - {s.name for s in table}
    if unknown:
        raise LabError(f"unknown lab service(s): {', '.join(sorted(unknown))}")
    return tuple(s for s in table if s.name in wanted)
