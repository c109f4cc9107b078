"""Scan orchestration: discovery -> identification -> inspection -> finding, with bounded concurrency."""

from __future__ import annotations

import asyncio
import resource
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from leaksonar.assess import assess
from leaksonar.enrich import Enricher
from leaksonar.model import Finding, Identity, Inspection, Limits
from leaksonar.protocols import BY_NAME, Endpoint
from leaksonar.scan.discover import DiscoveryStats
from leaksonar.scan.identify import identify
from leaksonar.scan.workers import DiscoverySettings, Worker, combined, follow
from leaksonar.targets import TargetSpace


@dataclass(frozen=True, slots=True)
class ScanOptions:
    rate: float | None = None
    """Connection attempts per second across the whole scan (None: as fast as limits allow)."""
    concurrency: int = 1000
    """Connection attempts in flight at once."""
    per_host: int = 16
    """Connection attempts in flight to one address at once."""
    timeout: float = 1.5
    """Seconds to wait for a TCP handshake."""
    retries: int = 1
    """Extra attempts for a port that did not answer."""
    inspect_concurrency: int = 64
    """Services identified and inspected at once."""
    workers: int = 1
    """Discovery processes (the limits above are shared between them)."""
    limits: Limits = field(default_factory=Limits)
    geo_db: str | None = None
    """Country (or city) database, MaxMind format; None or a missing file: no country."""
    asn_db: str | None = None
    """ASN database, MaxMind format; None or a missing file: no ASN and organisation."""

    def discovery(self) -> DiscoverySettings:
        return DiscoverySettings(self.concurrency, self.per_host, self.rate, self.timeout, self.retries)


@dataclass(slots=True)
class ScanProgress:
    discovery: DiscoveryStats
    services: int = 0
    exposed: int = 0


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_scan_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S-") + uuid.uuid4().hex[:8]


def raise_fd_limit(wanted: int) -> None:
    """Make room for `wanted` sockets (soft limit up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def inspect_service(ip: str, port: int, identity: Identity, limits: Limits) -> Inspection:
    """Run the protocol module's inspection within the service budget; failures become errors."""
    module = BY_NAME.get(identity.protocol)
    if module is None:
        return Inspection(identity.protocol, identity.software, identity.auth)
    try:
        async with asyncio.timeout(limits.service_budget + limits.timeout):
            return await module.inspect(Endpoint(ip, port), identity, limits)
    except TimeoutError:
        error = f"inspection stopped after {limits.service_budget:g} s"
    except Exception as exc:
        error = f"inspection failed: {type(exc).__name__}: {exc}"
    return Inspection(identity.protocol, identity.software, identity.auth, errors=(error,))


def to_finding(
    ip: str,
    port: int,
    identity: Identity,
    inspection: Inspection,
    scan_id: str,
    enricher: Enricher | None = None,
) -> Finding:
    """The finding for one service; its samples are assessed here and go no further."""
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
        size_bytes=inspection.size_bytes,
        collections=inspection.collections,
        errors=inspection.errors,
        details=inspection.details,
        banner=identity.banner if identity.protocol == "unknown" else "",
        assessment=assess(inspection),
        geo=geo,
        network=network,
    )


async def run_scan(
    space: TargetSpace,
    options: ScanOptions,
    scan_id: str,
    on_finding: Callable[[Finding], None],
    on_progress: Callable[[ScanProgress], None] | None = None,
    workers: Sequence[Worker] = (),
) -> ScanProgress:
    """Scan every (address, port) of `space`; call `on_finding` once per identified service.

    This process walks shard 0; `workers` (forked by `fork_workers`) walk the others and report
    their open ports here, where every service is identified and inspected.
    """
    shards = len(workers) + 1
    raise_fd_limit(options.concurrency + 4 * options.inspect_concurrency + 256)
    slots = asyncio.Semaphore(options.inspect_concurrency)
    tasks: set[asyncio.Task[None]] = set()
    progress = ScanProgress(DiscoveryStats())
    enricher = Enricher.open(options.geo_db, options.asn_db)

    async def examine(ip: str, port: int, sock: socket.socket | None) -> None:
        try:
            try:
                identity = await identify(ip, port, sock, options.limits)
            except Exception as exc:  # a hostile reply must not end the scan
                identity = Identity("unknown", banner=f"identification failed: {type(exc).__name__}")
            inspection = await inspect_service(ip, port, identity, options.limits)
            finding = to_finding(ip, port, identity, inspection, scan_id, enricher)
            progress.services += 1
            progress.exposed += finding.exposed
            on_finding(finding)
        finally:
            slots.release()

    async def on_open(ip: str, port: int, sock: socket.socket | None) -> None:
        await slots.acquire()
        task = asyncio.create_task(examine(ip, port, sock))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def on_worker_open(ip: str, port: int) -> None:
        await on_open(ip, port, None)

    def report(stats: DiscoveryStats) -> None:
        progress.discovery = combined(stats, list(workers))
        if on_progress:
            on_progress(progress)

    discovery = options.discovery().share(shards).discovery(space, 0, shards, on_open, report)
    followers = [asyncio.create_task(follow(worker, on_worker_open)) for worker in workers]
    try:
        await discovery.run()
        await asyncio.gather(*followers)
        while tasks:
            await asyncio.gather(*tasks)
    finally:
        enricher.close()
    report(discovery.stats)
    return progress
