"""A scan of the open ports another scanner found (`scan --open-from`): no discovery; every port passes the
scope guard, the blocklist and the opt-out lists, then goes to identification, inspection and the index."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, TextIO

import uvloop

from leaksonar.inputs import InputError
from leaksonar.openports import OpenPortCounts, binary_lines, read_open_ports
from leaksonar.run.job import Recorder, ScanInterrupted, ScanJob, ScanOutcome, open_index
from leaksonar.scan.engine import ScanOptions, ScanProgress, examine_open_ports, new_scan_id, utc_now
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
) -> Iterator[tuple[str, int]]:
    """The open ports read from `handle` that may be scanned, counted in `counts`. An address outside the
    scope raises InputError naming the line (`then` says what became of the scan)."""
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
        else:
            yield found.ip, found.port


def scan_open_ports(
    ports: Iterator[tuple[str, int]],
    source: str,
    options: ScanOptions,
    db: str | None,
    *,
    jsonl: TextIO | None = None,
    on_progress: Callable[[ScanProgress], None] | None = None,
    alerts: AlertConfig | None = None,
) -> ScanOutcome:
    """Record a new scan of the open ports `ports` yields (read from `source`) in the index `db`, store
    each finding as it comes, close the scan and deliver its change events (none says a service closed:
    an open-port list does not say what is closed). A reading error closes the scan as failed and is
    raised. Raises StoreError, ScanInterrupted (not resumable)."""
    store = open_index(db)
    scan_id = new_scan_id()
    record = {**asdict(options), "open_from": source}
    targets = f"open ports from {source}"
    store.scans.begin(scan_id, utc_now(), targets=targets, ports="", size=0, options=record)
    recorder = Recorder(ScanJob(scan_id, TargetSpace([], ()), options, ()), store, jsonl, on_progress)

    status = "failed"
    try:
        uvloop.run(examine_open_ports(ports, options, scan_id, recorder.finding, recorder.track))
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise ScanInterrupted(scan_id, resumable=False) from None
    finally:
        progress = recorder.finish(recorder.latest, status)
    recorder.deliver(alerts)
    return ScanOutcome(scan_id, progress, store)
