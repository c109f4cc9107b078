"""Scan orchestration: discovery -> identification -> inspection -> finding, with bounded concurrency."""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from leaksonar.formats import address_port
from leaksonar.model import ErrorKind, Finding, Limits, Problem
from leaksonar.scan.discover import DiscoveryStats
from leaksonar.scan.examine import Examination
from leaksonar.scan.workers import DiscoverySettings, Worker, combined, follow
from leaksonar.targets import TargetSpace, family

CHECKPOINT_EVERY = 1.0
"""Seconds between checkpoints of a scan's progress (what `scan --resume` starts from)."""
BATCH_SIZE = 500
"""Findings stored together, in one call (one transaction)."""
BATCH_EVERY = 0.5
"""Seconds a finding waits at most to be stored with others."""
MAX_RECORDING_FAILURES = 5
"""Findings in a row that cannot be recorded, even reduced to their error, before the scan ends (the
index itself is failing: disk full, database gone)."""

log = logging.getLogger(__name__)


class RecordingFailed(Exception):
    """Findings could not be recorded MAX_RECORDING_FAILURES times in a row; the message is one line."""


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

    def open_files(self) -> int:
        """Files a scan with these options may hold open at once, its workers' included: the discovery's
        sockets, and per inspection up to 4 SQL sessions, each a driver socket and a capped relay (3
        sockets)."""
        return self.concurrency + 16 * self.inspect_concurrency + 256

    def discovery(self) -> DiscoverySettings:
        return DiscoverySettings(self.concurrency, self.per_host, self.rate, self.timeout, self.retries)

    def examination(self, scan_id: str) -> Examination:
        return Examination(scan_id, self.limits, self.inspect_concurrency, self.geo_db, self.asn_db)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ScanOptions:
        """The options of a stored scan (`asdict` of them); keys this version does not know are ignored."""
        values = {f.name: record[f.name] for f in fields(cls) if f.name in record}
        limits = record.get("limits") or {}
        values["limits"] = Limits(**{f.name: limits[f.name] for f in fields(Limits) if f.name in limits})
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ShardMark:
    """How far one discovery shard got: every target before `position` is probed and its finding stored,
    except the open ports in `unrecorded` ((ip, port, position) each), which are to be examined again."""

    position: int = 0
    unrecorded: tuple[tuple[str, int, int], ...] = ()

    def to_record(self) -> dict[str, Any]:
        return {"position": self.position, "open": [list(entry) for entry in self.unrecorded]}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ShardMark:
        return cls(record["position"], tuple((ip, port, position) for ip, port, position in record["open"]))


@dataclass(slots=True)
class ScanProgress:
    discovery: DiscoveryStats
    services: int = 0
    exposed: int = 0


def new_scan_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S-") + uuid.uuid4().hex[:8]


def raise_fd_limit(wanted: int) -> None:
    """Make room for `wanted` sockets (soft limit up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class ScanRun:
    """One run of a scan: discovery in this process, every open port identified, inspected and turned into a
    finding here, with at most `inspect_concurrency` services at once; or forked workers that each walk a
    shard and examine its open ports themselves (`scan.workers`), reporting each open port as they find it
    and its finding once examined.

    Findings are stored in batches (`on_findings`): BATCH_SIZE of them, or those of the last BATCH_EVERY
    seconds, and all of them before each checkpoint and at the end. Per shard, the open ports found and not
    yet stored are kept (`pending`), so that a checkpoint can say where each shard may go on from after a
    crash (`ShardMark`).
    """

    def __init__(
        self,
        space: TargetSpace,
        options: ScanOptions,
        scan_id: str,
        on_findings: Callable[[list[Finding]], None],
        on_progress: Callable[[ScanProgress], None] | None,
        workers: Sequence[Worker],
        marks: Sequence[ShardMark],
    ) -> None:
        self.options, self.scan_id, self.workers = options, scan_id, list(workers)
        self.on_findings, self.on_progress = on_findings, on_progress
        shards = len(workers) or 1
        self.marks = list(marks) or [ShardMark()] * shards
        self.pending: list[dict[int, tuple[str, int]]] = [{} for _ in range(shards)]
        self.slots = asyncio.Semaphore(options.inspect_concurrency)
        self.tasks: set[asyncio.Task[None]] = set()
        self.batch: list[tuple[Finding, int, int]] = []
        """Findings not stored yet, each with its shard and position."""
        self.unrecorded = 0
        """Findings in a row that could not be recorded at all."""
        self.read_to: int | None = None
        """Examining ports found elsewhere: past the greatest position taken so far (None: discovering)."""
        self.progress = ScanProgress(DiscoveryStats())
        self.examiner = options.examination(scan_id).open(space.names)
        self.discovery = options.discovery().discovery(
            space, 0, 1, self._own_open, self._report, start=self.marks[0].position
        )

    async def _examine(
        self, ip: str, port: int, sock: socket.socket | None, shard: int, position: int
    ) -> None:
        try:
            self._found(await self.examiner.examine(ip, port, sock), shard, position)
        finally:
            self.slots.release()

    def _found(self, finding: Finding, shard: int, position: int) -> None:
        """A finding of `shard`'s open port at `position`, examined here or by the shard's worker: counted,
        and stored with the batch."""
        self.progress.services += 1
        self.progress.exposed += finding.exposed
        if self.on_progress:  # the services still come in once discovery is done
            self.on_progress(self.progress)
        self.batch.append((finding, shard, position))
        if len(self.batch) >= BATCH_SIZE:
            self._store()

    def _store(self) -> None:
        """Store the batch in one call to `on_findings`; when that fails, one finding at a time (`_record`),
        so that one finding that cannot be stored loses no other. Its ports are then no longer pending. A
        store interrupted (KeyboardInterrupt: SIGTERM to a scan whose Ctrl-C is ignored) leaves the batch
        to be stored again as the scan stops (`_stop`)."""
        batch, self.batch = self.batch, []
        if not batch:
            return
        try:
            self.on_findings([finding for finding, _, _ in batch])
            self.unrecorded = 0
        except Exception:
            for finding, shard, position in batch:
                self._record(finding)
                del self.pending[shard][position]
            return
        except BaseException:
            self.batch[:0] = batch
            raise
        for _, shard, position in batch:
            del self.pending[shard][position]

    async def _storing(self) -> None:
        """Store the batch every BATCH_EVERY seconds."""
        while True:
            await asyncio.sleep(BATCH_EVERY)
            self._store()

    def _record(self, finding: Finding) -> None:
        """Store `finding` alone. When that fails, the finding is recorded again with only its address,
        protocol and an `unknown` error saying why; when that fails too, the service is left out (logged)
        and, MAX_RECORDING_FAILURES times in a row, the scan ends with RecordingFailed."""
        try:
            self.on_findings([finding])
        except Exception as exc:  # one service's record must not end the scan
            said = str(exc).partition("\n")[0][:200]
            why = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
            log.warning(
                "%s: its finding could not be recorded (%s)", address_port(finding.ip, finding.port), why
            )
            error = Problem(ErrorKind.UNKNOWN, f"The finding could not be recorded: {why}.")
            reduced = replace(
                finding,
                databases=None,
                rows=None,
                size_bytes=None,
                collections=(),
                details={},
                errors=(*finding.errors, error),
            )
            try:
                self.on_findings([reduced])
            except Exception:
                self.unrecorded += 1
                if self.unrecorded >= MAX_RECORDING_FAILURES:
                    raise RecordingFailed(
                        f"{self.unrecorded} findings in a row could not be recorded; the last: {why}"
                    ) from None
                return
        self.unrecorded = 0

    async def _open(self, ip: str, port: int, sock: socket.socket | None, shard: int, position: int) -> None:
        """An open port of `shard`: examined as soon as an inspection slot is free."""
        self.pending[shard][position] = ip, port
        await self.slots.acquire()
        self._spawn(self._examine(ip, port, sock, shard, position))

    def _spawn(self, examination: Awaitable[None]) -> None:
        """Run `examination` (which releases its inspection slot) as a task `run` waits for."""
        task = asyncio.create_task(examination)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # raised once, by `run`

    async def _own_open(self, ip: str, port: int, sock: socket.socket, position: int) -> None:
        await self._open(ip, port, sock, 0, position)

    def _worker_open(self, shard: int) -> Callable[[str, int, int], None]:
        def opened(ip: str, port: int, position: int) -> None:  # its worker examines it
            self.pending[shard][position] = ip, port

        return opened

    def _worker_found(self, shard: int) -> Callable[[Finding, int], None]:
        def found(finding: Finding, position: int) -> None:
            self._found(finding, shard, position)

        return found

    def _report(self, stats: DiscoveryStats) -> None:
        self.progress.discovery = combined(stats, self.workers)
        if self.on_progress:
            self.on_progress(self.progress)

    def _report_own(self) -> None:
        self._report(self.discovery.stats)

    async def _reexamine(self, ip: str, port: int, shard: int, position: int) -> None:
        """An open port found before a crash and not recorded: examined again if it still answers."""
        sock = await self._connect(ip, port)
        if sock is None:
            del self.pending[shard][position]
            return
        await self._open(ip, port, sock, shard, position)

    async def _connect(self, ip: str, port: int) -> socket.socket | None:
        """A connection to a port found open earlier or elsewhere, or None when it no longer accepts one
        within the handshake timeout and its retries."""
        options = self.options
        sock = socket.socket(family(ip), socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
        try:
            async with asyncio.timeout(options.timeout * (options.retries + 1)):
                await asyncio.get_running_loop().sock_connect(sock, (ip, port))
        except (OSError, TimeoutError):
            sock.close()
            return None
        return sock

    async def _examine_if_open(self, ip: str, port: int, position: int) -> None:
        """A port another scanner found open: examined if it still accepts a connection (else counted
        closed, and its inspection slot released)."""
        try:
            sock = await self._connect(ip, port)
        except BaseException:
            self.slots.release()
            raise
        stats = self.progress.discovery
        if sock is None:
            stats.closed += 1
            del self.pending[0][position]
            self.slots.release()
            return
        stats.open += 1
        await self._examine(ip, port, sock, 0, position)

    def checkpoint(self) -> list[ShardMark]:
        """Per shard: the position below which every target is done, and the open ports still pending."""
        if self.read_to is not None:
            walked = [self.read_to]
        else:
            walked = [worker.low_water for worker in self.workers] or [self.discovery.low_water()]
        result = []
        for mark, low, found in zip(self.marks, walked, self.pending, strict=True):
            position = max(mark.position, low)
            unrecorded = sorted((ip, port, at) for at, (ip, port) in found.items() if at < position)
            result.append(ShardMark(position, tuple(unrecorded)))
        return result

    async def _checkpoints(self, on_checkpoint: Callable[[list[ShardMark], DiscoveryStats], None]) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_EVERY)
            self._store()
            on_checkpoint(self.checkpoint(), combined(self.discovery.stats, self.workers))

    def _background(
        self, on_checkpoint: Callable[[list[ShardMark], DiscoveryStats], None] | None
    ) -> list[asyncio.Task[None]]:
        """The tasks that store batches and (with `on_checkpoint`) write checkpoints while the scan runs."""
        loops = [self._storing(), *([self._checkpoints(on_checkpoint)] if on_checkpoint else [])]
        return [asyncio.create_task(loop) for loop in loops]

    def _stop(self, background: list[asyncio.Task[None]]) -> None:
        """Stop the `background` tasks and store the findings left (an interrupted scan's too); raise what
        ended one of them."""
        self.examiner.close()
        for task in background:
            task.cancel()
        self._store()
        for task in background:
            if task.done() and not task.cancelled() and (exc := task.exception()) is not None:
                raise exc

    async def run(
        self, on_checkpoint: Callable[[list[ShardMark], DiscoveryStats], None] | None
    ) -> ScanProgress:
        """Walk the space (or follow the workers walking it), re-examine what a crash left unrecorded, and
        wait for every inspection."""
        followers = [
            asyncio.create_task(follow(worker, self._worker_open(k), self._worker_found(k), self._report_own))
            for k, worker in enumerate(self.workers)
        ]
        for follower in followers:  # a worker stopped by Ctrl-C after this process was: its error is no news
            follower.add_done_callback(lambda task: task.cancelled() or task.exception())
        background = self._background(on_checkpoint)
        again = [(ip, port, k, at) for k, mark in enumerate(self.marks) for ip, port, at in mark.unrecorded]
        for ip, port, shard, at in again:
            self.pending[shard][at] = ip, port
        try:
            walking = [] if self.workers else [self.discovery.run()]
            await asyncio.gather(*walking, *(self._reexamine(*entry) for entry in again))
            await asyncio.gather(*followers)
            while self.tasks:
                await asyncio.gather(*self.tasks)
        finally:
            self._stop(background)
        self._report_own()
        return self.progress

    async def examine(
        self,
        ports: Iterator[tuple[str, int, int]],
        on_checkpoint: Callable[[list[ShardMark], DiscoveryStats], None] | None = None,
    ) -> ScanProgress:
        """Identify and inspect open ports found elsewhere (no discovery), as `ports` yields them with their
        position in the input (increasing, but for those a checkpoint left unrecorded, yielded first); each
        counts as probed, and as open if it still accepts a connection (else closed). A reading error is
        raised once the services in flight are recorded."""
        stats, self.read_to = self.progress.discovery, self.marks[0].position
        background = self._background(on_checkpoint)
        try:
            async for ip, port, position in _read_ahead(ports, self.options.inspect_concurrency):
                stats.probes += 1
                self.pending[0][position] = ip, port
                self.read_to = max(self.read_to, position + 1)
                await self.slots.acquire()
                self._spawn(self._examine_if_open(ip, port, position))
                if self.on_progress:
                    self.on_progress(self.progress)
        finally:
            try:
                while self.tasks:
                    await asyncio.gather(*self.tasks)
            finally:  # also when they are cancelled (the event loop stopped by KeyboardInterrupt)
                self._stop(background)
        if self.on_progress:
            self.on_progress(self.progress)
        return self.progress


async def _read_ahead(
    items: Iterator[tuple[str, int, int]], ahead: int
) -> AsyncIterator[tuple[str, int, int]]:
    """`items`, advanced in a daemon thread (reading a pipe blocks; Ctrl-C must not wait for it) at most
    `ahead` items before they are taken; what `items` raises is raised here."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, int, int] | BaseException | None] = asyncio.Queue(ahead)

    def put(item: tuple[str, int, int] | BaseException | None) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def read() -> None:
        try:
            for item in items:
                put(item)
        except BaseException as exc:
            put(exc)
        else:
            put(None)

    threading.Thread(target=read, name="open-ports", daemon=True).start()
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


async def run_scan(
    space: TargetSpace,
    options: ScanOptions,
    scan_id: str,
    on_findings: Callable[[list[Finding]], None],
    on_progress: Callable[[ScanProgress], None] | None = None,
    workers: Sequence[Worker] = (),
    *,
    marks: Sequence[ShardMark] = (),
    on_checkpoint: Callable[[list[ShardMark], DiscoveryStats], None] | None = None,
) -> ScanProgress:
    """Scan every (address, port) of `space`; call `on_findings` with the identified services, in batches
    (`ScanRun`), each service once.

    `workers` (forked by `fork_workers`) walk one shard each, examine its open ports and send their findings
    here, where they are stored; without workers this process walks the space and examines each service.
    Shard k goes on from `marks[k]` (default: its start); every CHECKPOINT_EVERY seconds `on_checkpoint`
    gets every shard's mark.
    """
    raise_fd_limit(options.open_files())
    run = ScanRun(space, options, scan_id, on_findings, on_progress, workers, marks)
    return await run.run(on_checkpoint)


async def examine_open_ports(
    ports: Iterator[tuple[str, int, int]],
    options: ScanOptions,
    scan_id: str,
    on_findings: Callable[[list[Finding]], None],
    on_progress: Callable[[ScanProgress], None] | None = None,
    *,
    mark: ShardMark | None = None,
    on_checkpoint: Callable[[list[ShardMark], DiscoveryStats], None] | None = None,
) -> ScanProgress:
    """Identify and inspect the open ports `ports` yields (found by another scanner: no discovery), as
    they come, each with its position in the input; call `on_findings` with the services, in batches. An
    examination resumed from `mark` is fed its unrecorded ports first, then the ports from its position on;
    every CHECKPOINT_EVERY seconds `on_checkpoint` gets the one shard's mark."""
    raise_fd_limit(16 * options.inspect_concurrency + 256)
    run = ScanRun(TargetSpace([], ()), options, scan_id, on_findings, on_progress, (), (mark or ShardMark(),))
    return await run.examine(ports, on_checkpoint)
