"""From an open port to a finding: identification, inspection within the service budget, assessment and
enrichment. The same whether the scan's own process or a discovery worker examines the port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from leaksonar.formats import utc_now
from leaksonar.model import ErrorKind, Finding, Identity, Inspection, Limits, Problem
from leaksonar.scan.enrich import Enricher

if TYPE_CHECKING:
    from leaksonar.protocols.base import BoundedStream


@dataclass(frozen=True, slots=True)
class Examination:
    """How one scan examines its open ports; `open` it in the process that examines them."""

    scan_id: str
    limits: Limits
    concurrency: int
    """Services examined at once."""
    geo_db: str | None = None
    asn_db: str | None = None

    def open(self, names: Mapping[str, str]) -> Examiner:
        """An examiner with its own readers of the enrichment databases; `names`: hostname per address."""
        return Examiner(self, Enricher.open(self.geo_db, self.asn_db), names)


class Examiner:
    """Turns an open port into its finding; `close` it when the scan ends."""

    def __init__(self, examination: Examination, enricher: Enricher, names: Mapping[str, str]) -> None:
        self.scan_id, self.limits = examination.scan_id, examination.limits
        self.enricher, self.names = enricher, names

    async def examine(self, ip: str, port: int, sock: socket.socket | None) -> Finding:
        """The finding for the service on `ip`:`port`, first probed on `sock` (None: a new connection);
        whatever the server sends, a finding, never an exception."""
        from leaksonar.scan.identify import identify_keeping  # the protocol modules: once a port is open

        limits, hostname = self.limits, self.names.get(ip)
        kept: BoundedStream | None = None
        try:
            identity, kept = await identify_keeping(ip, port, sock, limits, hostname)
        except Exception as exc:  # a hostile reply must not end the scan
            identity = Identity("unknown", banner=f"identification failed: {type(exc).__name__}")
        inspection = await inspect_service(ip, port, identity, limits, hostname, kept)
        return to_finding(ip, port, identity, inspection, self.scan_id, self.enricher, hostname)

    def close(self) -> None:
        self.enricher.close()


async def inspect_service(
    ip: str,
    port: int,
    identity: Identity,
    limits: Limits,
    hostname: str | None = None,
    kept: BoundedStream | None = None,
) -> Inspection:
    """Run the protocol module's inspection within the service budget, over TLS if the service spoke it
    when identified, and over `kept` (which it closes) if identification kept its connection open for
    it (`protocols.CONTINUES`); failures become errors."""
    from leaksonar.protocols import BY_NAME, CONTINUES, Endpoint  # the drivers: loaded once a port is open

    module = BY_NAME.get(identity.protocol)
    if module is None:
        return Inspection(
            identity.protocol, identity.software, identity.auth, errors=(unidentified(identity, limits),)
        )
    try:
        async with asyncio.timeout(limits.service_budget + limits.timeout):
            tls, starttls = identity.tls is not None and not identity.starttls, identity.starttls
            endpoint = Endpoint(ip, port, tls=tls, starttls=starttls, hostname=hostname)
            if kept is not None:
                return await CONTINUES[identity.protocol](kept, endpoint, identity, limits)
            return await module.inspect(endpoint, identity, limits)
    except TimeoutError:
        error = Problem(ErrorKind.TIMEOUT, f"inspection stopped after {limits.service_budget:g} s")
    except Exception as exc:
        error = Problem(ErrorKind.UNKNOWN, f"inspection failed: {type(exc).__name__}: {exc}")
    return Inspection(identity.protocol, identity.software, identity.auth, errors=(error,))


def unidentified(identity: Identity, limits: Limits) -> Problem:
    """Why a service's protocol is unknown, as an error of its finding."""
    if identity.banner.startswith("identification failed"):
        return Problem(ErrorKind.UNKNOWN, f"Not identified: {identity.banner}.")
    if identity.banner:
        return Problem(ErrorKind.PROTOCOL_ERROR, "Not identified: its reply matches no known protocol.")
    return Problem(ErrorKind.TIMEOUT, f"Not identified: no reply to any probe within {limits.timeout:g} s.")


def to_finding(
    ip: str,
    port: int,
    identity: Identity,
    inspection: Inspection,
    scan_id: str,
    enricher: Enricher | None = None,
    hostname: str | None = None,
) -> Finding:
    """The finding for one service; its samples are assessed here and go no further."""
    from leaksonar.assess import assess  # its lexicons and signatures: loaded once a port is open

    geo, network = enricher.lookup(ip) if enricher else (None, None)
    return Finding(
        ip=ip,
        port=port,
        protocol=inspection.protocol,
        software=inspection.software or identity.software,
        auth=inspection.auth,
        exposed=inspection.exposed,
        time=utc_now(),
        scan_id=scan_id,
        databases=inspection.databases,
        rows=inspection.rows,
        rows_estimated=inspection.rows_estimated,
        size_bytes=inspection.size_bytes,
        collections=inspection.collections,
        errors=inspection.errors,
        details=inspection.details,
        banner=identity.banner if identity.protocol == "unknown" else "",
        assessment=assess(inspection),
        geo=geo,
        network=network,
        hostname=hostname,
        tls=identity.tls,
    )
