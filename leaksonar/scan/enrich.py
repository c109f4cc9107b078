"""Enrichment: country, autonomous system and organisation of an address, from MaxMind-format `.mmdb` files.

Reads the GeoLite2/GeoIP2 layouts: Country or City (`country.iso_code`) and ASN
(`autonomous_system_number`, `autonomous_system_organization`). Nothing is looked up on the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import maxminddb

    from leaksonar.model.record import GeoRecord, NetworkRecord

GEO_ENV = "LEAKSONAR_GEOIP"
ASN_ENV = "LEAKSONAR_ASN_DB"


class EnrichError(Exception):
    """A configured file is not a MaxMind database; the message is one line."""


def configured(path: str | None, env: str) -> str | None:
    """The path given as an option, else the one in the environment variable `env`."""
    return path or os.environ.get(env) or None


def _open(path: str | None, what: str) -> maxminddb.Reader | None:
    """The reader for `path`; None when no path is set or the file does not exist. (maxminddb is imported
    here, by a scan that has a database: it costs every command ~50 ms at start-up.)"""
    if not path or not Path(path).is_file():
        return None
    import maxminddb
    from maxminddb.errors import InvalidDatabaseError

    try:
        return maxminddb.open_database(path)
    except (InvalidDatabaseError, ValueError, OSError):
        raise EnrichError(f"{what} {path} is not a MaxMind DB (.mmdb) file") from None


@dataclass(slots=True)
class Enricher:
    """Open readers for one scan; `lookup(ip)` gives the finding's `geo` and `network` parts."""

    geo: maxminddb.Reader | None = None
    asn: maxminddb.Reader | None = None

    @classmethod
    def open(cls, geo_db: str | None, asn_db: str | None) -> Enricher:
        """Open the country (or city) and ASN databases; a missing file gives no enrichment, not an error."""
        geo = _open(geo_db, "country database")
        try:
            return cls(geo, _open(asn_db, "ASN database"))
        except EnrichError:
            if geo is not None:
                geo.close()
            raise

    def lookup(self, ip: str) -> tuple[GeoRecord | None, NetworkRecord | None]:
        """({"country": "CN"} or None, {"asn": 64500, "org": "..."} or None) for `ip`."""
        geo: GeoRecord | None = None
        network: NetworkRecord | None = None
        place = _get(self.geo, ip)
        country = (place.get("country") or place.get("registered_country") or {}).get("iso_code")
        if country:
            geo = {"country": country}
        system = _get(self.asn, ip)
        if system.get("autonomous_system_number") is not None:
            network = {
                "asn": int(system["autonomous_system_number"]),
                "org": system.get("autonomous_system_organization") or "",
            }
        return geo, network

    def close(self) -> None:
        for reader in (self.geo, self.asn):
            if reader is not None:
                reader.close()

    def __enter__(self) -> Enricher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _get(reader: maxminddb.Reader | None, ip: str) -> dict[str, Any]:
    if reader is None:
        return {}
    from maxminddb.errors import InvalidDatabaseError  # imported already: the reader is open

    try:
        found = reader.get(ip)
    except (ValueError, InvalidDatabaseError):
        return {}
    return found if isinstance(found, dict) else {}


def check(geo_db: str | None, asn_db: str | None) -> list[str]:
    """Raise EnrichError for a file that is not an mmdb; warnings for configured files that are missing."""
    Enricher.open(geo_db, asn_db).close()
    return [
        f"{what} {path} does not exist: findings get no {part}"
        for path, what, part in ((geo_db, "country database", "country"), (asn_db, "ASN database", "ASN"))
        if path and not Path(path).is_file()
    ]
