"""The owners file (TOML): which organisation holds a network, and where to send abuse reports.

    [[owner]]
    org = "Lab Police Bureau"
    networks = ["127.77.0.0/24", "fd00:77::/48"]   # IPv4 or IPv6; or network = "..."
    abuse = "abuse@police.example"
    contact = "Information Security Office"   # optional: the greeting

The most specific network that holds an address names its owner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leaksonar.inputs import InputError, load_toml
from leaksonar.store.addresses import Network, parse_network
from leaksonar.targets import parse_address

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
"""An abuse address in the characters addresses use in practice: letters write it as it is (no markup)."""


class OwnersError(Exception):
    """The owners file cannot be used; the message is one line."""


@dataclass(frozen=True, slots=True)
class Owner:
    org: str
    abuse: str | None = None
    contact: str | None = None
    network: str | None = None
    """The network that matched (owners file), or the ASN it came from."""
    domain: str | None = None
    """The domain whose certificates chose the services (`report --domain`)."""


@dataclass(frozen=True, slots=True)
class Owners:
    entries: tuple[tuple[Network, Owner], ...] = ()

    def lookup(self, ip: str) -> Owner | None:
        """The owner of the most specific network holding `ip`, if any."""
        address = parse_address(ip)
        holding = [(net, owner) for net, owner in self.entries if address in net]
        return max(holding, key=lambda pair: pair[0].prefixlen)[1] if holding else None


def _entry(path: Path, number: int, raw: Any) -> list[tuple[Network, Owner]]:
    where = f"owners file {path}: owner #{number}"
    if not isinstance(raw, dict):
        raise OwnersError(f"{where} is not a table")
    unknown = sorted(set(raw) - {"org", "network", "networks", "abuse", "contact"})
    if unknown:
        raise OwnersError(f"{where}: unknown key(s) {', '.join(unknown)}")
    org, abuse, contact = raw.get("org"), raw.get("abuse"), raw.get("contact")
    if not isinstance(org, str) or not org.strip():
        raise OwnersError(f"{where}: 'org' (the organisation's name) is missing")
    if abuse is not None and (not isinstance(abuse, str) or not _EMAIL.match(abuse)):
        raise OwnersError(f"{where} ({org}): abuse {abuse!r} is not an e-mail address")
    if contact is not None and not isinstance(contact, str):
        raise OwnersError(f"{where} ({org}): contact must be a string")
    networks = raw.get("networks", [raw["network"]] if "network" in raw else [])
    if not isinstance(networks, list) or not networks:
        raise OwnersError(f"{where} ({org}): give 'network' or 'networks' (CIDR blocks)")
    entries = []
    for text in networks:
        try:
            network = parse_network(str(text))
        except ValueError:
            raise OwnersError(f"{where} ({org}): {text!r} is not an IP network (CIDR)") from None
        entries.append((network, Owner(org.strip(), abuse, contact, str(network))))
    return entries


def load_owners(path: Path | None) -> Owners:
    """Read and check an owners file; no file gives an empty table."""
    if path is None:
        return Owners()
    try:
        raw = load_toml(path)
    except InputError as exc:
        raise OwnersError(f"owners file {exc}") from None
    owners = raw.get("owner", [])
    if not isinstance(owners, list) or set(raw) - {"owner"}:
        raise OwnersError(f"owners file {path}: expected only [[owner]] tables")
    return Owners(tuple(e for number, item in enumerate(owners, 1) for e in _entry(path, number, item)))
