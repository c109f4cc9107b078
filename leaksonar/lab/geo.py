"""The lab's own MaxMind-format databases: its 127.x addresses mapped to test countries, ASNs and
organisations (GeoLite2-Country and GeoLite2-ASN layouts), so enrichment is tested offline."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

GEO_FILE = "lab-country.mmdb"
ASN_FILE = "lab-asn.mmdb"


@dataclass(frozen=True, slots=True)
class Owner:
    country: str
    asn: int
    org: str


BLOCK_OWNER = Owner("CN", 64500, "Lab Police Bureau Network")
"""The whole /24 of the lab, unless an offset below says otherwise."""
OFFSET_OWNERS: dict[int, Owner] = {
    offset: Owner("US", 64501, "Lab Cloud Hosting Inc.") for offset in (24, 27, 31, 35)
}
"""base + offset -> owner: the CouchDB, ClickHouse, etcd and InfluxDB services sit in another network."""


def lab_owner(base: str, ip: str) -> Owner | None:
    """Who the lab's databases say owns `ip` (None outside the lab's /24)."""
    first, address = ipaddress.IPv4Address(base), ipaddress.IPv4Address(ip)
    if address not in ipaddress.IPv4Network(f"{first}/24", strict=False):
        return None
    return OFFSET_OWNERS.get(int(address) - int(first), BLOCK_OWNER)


def write_lab_mmdbs(directory: Path, base: str) -> tuple[Path, Path]:
    """Write the country and ASN databases for the lab on `base` into `directory`; return their paths."""
    block = str(ipaddress.IPv4Network(f"{base}/24", strict=False))
    first = ipaddress.IPv4Address(base)
    placed = [(IPSet([block]), BLOCK_OWNER)]
    placed += [(IPSet([f"{first + offset}/32"]), owner) for offset, owner in OFFSET_OWNERS.items()]
    country = MMDBWriter(4, "GeoLite2-Country", languages=["en"], description="leaksonar lab countries")
    asn = MMDBWriter(4, "GeoLite2-ASN", languages=["en"], description="leaksonar lab ASNs")
    for network, owner in placed:  # later, more specific networks override the block
        country.insert_network(network, {"country": {"iso_code": owner.country}})
        asn.insert_network(
            network, {"autonomous_system_number": owner.asn, "autonomous_system_organization": owner.org}
        )
    paths = directory / GEO_FILE, directory / ASN_FILE
    country.to_db_file(str(paths[0]))
    asn.to_db_file(str(paths[1]))
    return paths
