"""A scan of the open ports another scanner found (`scan --open-from`): no discovery; every port passes the
scope guard, the blocklist and the opt-out lists, then goes to identification, inspection and the index.

A port's position is its place among the ports read from the input (duplicates dropped): the scan
checkpoints as one shard over these positions, so that a scan of a file that did not finish goes on from
there (`scan --resume`, with the file unchanged: `ScanRow.source` keeps its stamp)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import chain
from typing import IO, TYPE_CHECKING, Any, TextIO

import uvloop

from leaksonar.formats import utc_now
from leaksonar.inputs import InputError
from leaksonar.openports import OpenPortCounts, binary_lines, read_open_ports
from leaksonar.run.job import Recorder, ScanInterrupted, ScanJob, ScanOutcome, made, open_index
from leaksonar.run.local import LocalScan
from leaksonar.scan.discover import DiscoveryStats
from leaksonar.scan.engine import (
    ScanOptions,
    ScanProgress,
    ShardMark,
    examine_open_ports,
    new_scan_id,
)
from leaksonar.targets import SCOPE_ENV, AddressFilter, TargetSpace

if TYPE_CHECKING:
    from leaksonar.notify.rules import AlertConfig


@dataclass
class OpenFromCounts:
    """What a reading saw: the reader's counts, and the ports passed over here."""

    read: OpenPortCounts = field(default_factory=OpenPortCounts)
    skipped: int = 0
    """Ports on reserved (blocklisted) or opted-out addresses."""

    @property
    def admitted(self) -> int:
        return self.read.ports - self.skipped

    def describe(self, source: str) -> str:
        read = self.read
        return (
            f"open ports from {source} ({read.format or 'empty'}): {read.lines:,} lines, {read.ports:,} open"
            f" ports, {read.duplicates:,} duplicates, {read.bad_lines:,} bad lines skipped, {read.skipped:,}"
            f" entries not open TCP, {self.skipped:,} blocklisted or opted out"
        )


def admitted_ports(
    handle: IO[bytes],
    source: str,
    guard: AddressFilter,
    counts: OpenFromCounts,
    *,
    default_port: int | None = None,
    skip_bad_lines: bool = False,
    then: str,
    start: int = 0,
) -> Iterator[tuple[str, int, int]]:
    """The open ports read from `handle` that may be scanned, with their positions from `start` on, counted
    in `counts`. An address outside the scope raises InputError naming the line (`then` says what became
    of the scan), before `start` too."""
    lines = binary_lines(handle)
    read = read_open_ports(
        lines, source, default_port=default_port, skip_bad_lines=skip_bad_lines, counts=counts.read
    )
    for found in read:
        if not guard.in_scope(found.ip):
            spec = guard.scope.spec if guard.scope else ""
            reason = f"an address outside the allowed scope {spec} (--scope / {SCOPE_ENV}); {then}"
            raise InputError(source, found.line, reason)
        elif guard.skips(found.ip):
            counts.skipped += 1
        elif (position := counts.read.ports - 1) >= start:
            yield found.ip, found.port, position


def start(source: dict[str, Any], options: ScanOptions, db: str | None) -> LocalScan:
    """A new scan, in the index `db`, of the open ports read from `source` (`ScanRow.source`). Raises
    StoreError."""
    store = open_index(db, writing=True)
    scan_id = new_scan_id()
    record = {**asdict(options), **made(source)}
    targets = f"open ports from {source['file']}"
    store.scans.begin(scan_id, utc_now(), targets=targets, ports="", size=0, options=record)
    job = ScanJob(scan_id, TargetSpace([], ()), options, (ShardMark(),), source=source)
    return LocalScan(job, store, None)


def run(
    scan: LocalScan,
    ports: Iterator[tuple[str, int, int]],
    counts: OpenFromCounts,
    *,
    jsonl: TextIO | None = None,
    on_progress: Callable[[ScanProgress], None] | None = None,
    alerts: AlertConfig | None = None,
) -> ScanOutcome:
    """Run `scan` (new, or resumed: `ports` then start at its mark's position) over the open ports `ports`
    yields with their positions (counted in `counts`), store each finding as it comes, checkpoint, close the
    scan and deliver its change events (none says a service closed: an open-port list does not say what is
    closed). A reading error closes the scan as failed and is raised. Raises StoreError, ScanInterrupted
    (resumable when read from a regular file)."""
    job, store = scan.job, scan.store
    recorder = Recorder(job, store, jsonl, on_progress)
    if job.resumed:
        store.scans.reopen(job.scan_id)
    (mark,) = job.marks
    status = "failed"
    try:
        recorder.header()
        recorder.checkpoint([mark], DiscoveryStats())
        uvloop.run(
            examine_open_ports(
                chain(mark.unrecorded, ports),
                job.options,
                job.scan_id,
                recorder.findings,
                recorder.track,
                mark=mark,
                on_checkpoint=recorder.checkpoint,
            )
        )
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise ScanInterrupted(job.scan_id, resumable="stamp" in job.source) from None
    finally:
        if job.source.get("format") is None and counts.read.format is not None:
            store.scans.set_source(job.scan_id, {**job.source, "format": counts.read.format})
        progress = recorder.finish(recorder.latest, status)
    recorder.deliver(alerts)
    return ScanOutcome(job.scan_id, progress, store)
