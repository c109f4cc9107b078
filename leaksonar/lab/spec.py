"""What the lab runs: one entry per service, each on its own loopback address (base + offset)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from leaksonar.model import Auth

Kind = Literal["redis", "postgresql", "mysql", "memcached"]
DEFAULT_BASE = "127.77.0.0"
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


class LabError(Exception):
    """The lab cannot do what was asked; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    offset: int
    port: int
    protocol: Kind
    auth: Auth


SERVICES: tuple[ServiceSpec, ...] = (
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


def check_base(base: str) -> ipaddress.IPv4Address:
    """The base address, if every lab address derived from it stays inside 127.0.0.0/8."""
    try:
        address = ipaddress.IPv4Address(base)
    except ValueError:
        raise LabError(f"base {base!r} is not an IPv4 address") from None
    if address not in LOOPBACK or address + max(s.offset for s in SERVICES) not in LOOPBACK:
        raise LabError(f"base {base} is outside 127.0.0.0/8: the lab runs on loopback only")
    return address


def service_ip(base: str, spec: ServiceSpec) -> str:
    return str(check_base(base) + spec.offset)


def select(names: Iterable[str] | None) -> tuple[ServiceSpec, ...]:
    """The services called `names` (all of them for None), in table order."""
    if names is None:
        return SERVICES
    wanted = set(names)
    unknown = wanted - {s.name for s in SERVICES}
    if unknown:
        raise LabError(f"unknown lab service(s): {', '.join(sorted(unknown))}")
    return tuple(s for s in SERVICES if s.name in wanted)
