"""A scan as a job: run the engine over a target space and record every finding in the index.

Crash safety: every CHECKPOINT_EVERY seconds the scan's row gets, per discovery shard, a `ShardMark`:
the position below which every probe is done and its finding stored, but for the open ports it lists.
`resume_job` rebuilds a scan that did not finish (killed, interrupted, failed) from its row; the listed
ports are examined again and each shard walks on from its position: what lies between the checkpoint
and the crash is probed again, and findings found again replace their rows. A scan of open ports read from
a file (`scan --open-from`, run.openfrom) checkpoints the same way, as one shard whose positions count the
ports read from the file.

How a scan was made is kept in its row's options, beside the ScanOptions: "version" (leaksonar's) and
"source" (`ScanRow.source`).
"""

from __future__ import annotations

import gc
import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import uvloop

from leaksonar.formats import utc_now
from leaksonar.inputs import file_stamp
from leaksonar.model import Finding
from leaksonar.scan.discover import DiscoveryStats
from leaksonar.scan.engine import (
    ScanOptions,
    ScanProgress,
    ShardMark,
    new_scan_id,
    raise_fd_limit,
    run_scan,
)
from leaksonar.scan.workers import Worker, WorkerInterrupted, fork_workers
from leaksonar.targets import Scope, ScopeError, TargetSpace, stored_names

if TYPE_CHECKING:
    from leaksonar.notify.rules import AlertConfig
    from leaksonar.store.db import Store
    from leaksonar.store.rows import ScanRow


DISCOVERY = {"kind": "discovery"}
"""The source of a scan that discovers its open ports itself."""


def made(source: dict[str, Any]) -> dict[str, Any]:
    """What a new scan's row keeps of how it was made, beside its options: this leaksonar's version and
    where its open ports come from (`source`, the shape of `ScanRow.source`)."""
    from leaksonar import __version__

    return {"version": __version__, "source": source}


class ResumeError(ValueError):
    """A scan cannot be resumed; the message is one line."""


class ScanInterrupted(Exception):
    """Ctrl-C stopped a scan; the findings so far are stored."""

    def __init__(self, scan_id: str, resumable: bool) -> None:
        super().__init__(f"scan {scan_id} interrupted")
        self.scan_id = scan_id
        self.resumable = resumable
        """`scan --resume` can finish it (a local scan; a distributed one cannot)."""


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """A finished scan: its id, its counters and the index it is stored in."""

    scan_id: str
    progress: ScanProgress
    store: Store


def open_index(db: str | None, *, create: bool = True, writing: bool = False) -> Store:
    """The index `db` (a path or URL; None: the default), migrated; made when there is none only with
    `create`; `writing`: for a scan (a small page cache, `store.db.WRITING_CACHE_MIB`). Raises StoreError."""
    from leaksonar.store.db import READING_CACHE_MIB, WRITING_CACHE_MIB, Store  # SQLAlchemy: loaded on need

    gc.freeze()  # as at start-up: the index's modules live until exit, and the collector need not walk them
    # made after the freeze, so that the collection at exit closes it (WAL checkpointed)
    return Store(db, create=create, cache_mib=WRITING_CACHE_MIB if writing else READING_CACHE_MIB)


@dataclass(frozen=True, slots=True)
class ScanJob:
    """A scan recorded in the index, to run from its checkpoint (a new scan: from the start)."""

    scan_id: str
    space: TargetSpace
    options: ScanOptions
    marks: tuple[ShardMark, ...]
    """Per discovery shard, where to go on from."""
    probes: int = 0
    """Probes counted by earlier runs of the scan."""
    open_ports: int = 0
    resumed: bool = False
    source: dict[str, Any] = field(default_factory=lambda: dict(DISCOVERY))
    """Where its open ports come from (`ScanRow.source`)."""


def start_workers(
    space: TargetSpace, options: ScanOptions, scan_id: str, starts: Sequence[int] = ()
) -> list[Worker]:
    """Fork the workers of scan `scan_id` of `space`, one per shard (none for a single shard: this process
    walks it), each from its position in `starts` (default: the beginning). Only once the targets passed the
    scope check; a new scan forks them before it opens the index, which they need not wait for. The limit
    on open files is raised first, for the workers too (they inspect what they find)."""
    if options.workers < 2:
        return []
    raise_fd_limit(options.open_files())
    return fork_workers(space, options.workers, options.discovery(), options.examination(scan_id), starts)


def record_scan(store: Store, space: TargetSpace, options: dict[str, Any], scan_id: str | None = None) -> str:
    """Record a new scan of `space` (status running; `options`: a ScanOptions as `dataclasses.asdict`, and
    what else the scan keeps) under `scan_id` (default: a new id); returns its id."""
    scan_id = scan_id or new_scan_id()
    store.scans.begin(
        scan_id,
        utc_now(),
        targets=space.describe(),
        ports=",".join(map(str, space.ports)),
        size=space.size,
        options={**options, "seed": space.seed, **made(DISCOVERY)},
        coverage={
            "intervals": [list(i) for i in space.intervals],
            "ports": list(space.ports),
            "names": dict(space.names),
        },
    )
    return scan_id


def new_job(space: TargetSpace, options: ScanOptions, store: Store, scan_id: str | None = None) -> ScanJob:
    """Record a new scan of `space` (status running) under `scan_id` (default: a new id)."""
    scan_id = record_scan(store, space, asdict(options), scan_id)
    return ScanJob(scan_id, space, options, (ShardMark(),) * options.workers)


def _still_running(checkpoint: dict[str, Any]) -> int | None:
    """The process id of the scan when it still runs on this machine."""
    pid = checkpoint.get("pid")
    if not isinstance(pid, int) or checkpoint.get("host") != socket.gethostname() or pid == os.getpid():
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"leaksonar" in command else None


def resume_job(scan_id: str, store: Store, scope: Scope | None = None) -> ScanJob:
    """The rest of an unfinished scan: its space, options and checkpoint from its row; its targets pass
    the scope guard like typed ones (the row may come from a scan run without one). Raises ResumeError."""
    scan = store.scans.get(scan_id)
    if scan is None:
        raise ResumeError(f"no scan {scan_id!r} in {store.db}")
    if scan.status == "done":
        raise ResumeError(f"scan {scan_id} already finished; nothing to resume")
    record, coverage, checkpoint = scan.options, scan.coverage, scan.checkpoint
    source = scan.source or DISCOVERY
    if source.get("kind") == "open-from":
        return _resume_open_from(scan, source)
    if not coverage or "seed" not in record or not checkpoint:
        raise ResumeError(
            f"scan {scan_id} has no checkpoint to resume from (distributed, or made by an older leaksonar)"
        )
    if scan.status == "running" and (pid := _still_running(checkpoint)) is not None:
        raise ResumeError(f"scan {scan_id} is still running (process {pid})")
    try:
        options = ScanOptions.from_record(record)
        marks = tuple(ShardMark.from_record(shard) for shard in checkpoint["shards"])
        names = stored_names(coverage.get("names", {}))  # as resolved when the scan started, never again
        space = TargetSpace(
            [(first, last) for first, last in coverage["intervals"]],
            tuple(coverage["ports"]),
            record["seed"],
            names,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResumeError(f"scan {scan_id} has a damaged record ({type(exc).__name__}: {exc})") from None
    if scope is not None:
        try:
            scope.check(space.intervals)
        except ScopeError as exc:
            raise ResumeError(str(exc)) from None
    if len(marks) != options.workers:
        raise ResumeError(
            f"scan {scan_id} has a damaged checkpoint ({len(marks)} shards, not {options.workers})"
        )
    return ScanJob(
        scan_id, space, options, marks, checkpoint.get("probes", 0), checkpoint.get("open", 0), resumed=True
    )


def _resume_open_from(scan: ScanRow, source: dict[str, Any]) -> ScanJob:
    """The rest of a scan of the open ports read from a file, which must be as it was when it started."""
    scan_id, checkpoint, path = scan.id, scan.checkpoint, source.get("file")
    if "stamp" not in source:
        where = "standard input" if path == "-" else f"a stream ({path})"
        raise ResumeError(f"scan {scan_id} read its open ports from {where}, which cannot be read again")
    if not checkpoint or not isinstance(path, str):
        raise ResumeError(f"scan {scan_id} has no checkpoint to resume from (made by an older leaksonar)")
    try:
        stamp = file_stamp(path)
    except OSError as exc:
        raise ResumeError(f"scan {scan_id} read {path}, which cannot be read now: {exc.strerror}") from None
    if stamp != source.get("stamp"):
        raise ResumeError(f"{path} changed since scan {scan_id} read it; scan it again with --open-from")
    if scan.status == "running" and (pid := _still_running(checkpoint)) is not None:
        raise ResumeError(f"scan {scan_id} is still running (process {pid})")
    try:
        options = ScanOptions.from_record(scan.options)
        (mark,) = (ShardMark.from_record(shard) for shard in checkpoint["shards"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ResumeError(f"scan {scan_id} has a damaged record ({type(exc).__name__}: {exc})") from None
    probes, found = checkpoint.get("probes", 0), checkpoint.get("open", 0)
    return ScanJob(scan_id, TargetSpace([], ()), options, (mark,), probes, found, resumed=True, source=source)


class Recorder:
    """Where a job's findings and checkpoints go: the index (and the JSONL file), as they come."""

    def __init__(
        self,
        job: ScanJob,
        store: Store,
        jsonl: TextIO | None,
        on_progress: Callable[[ScanProgress], None] | None = None,
    ) -> None:
        self.job, self.store, self.jsonl, self.on_progress = job, store, jsonl, on_progress
        self.latest: ScanProgress | None = None
        """The scan's progress as last reported (what an interrupted scan closes with)."""

    def header(self) -> None:
        """Start the JSONL output with the record of how the scan was made (`ScanRow.header`)."""
        row = self.store.scans.get(self.job.scan_id)
        if self.jsonl is not None and row is not None:
            self.jsonl.write(json.dumps(row.header(self.job.resumed), ensure_ascii=False) + "\n")
            self.jsonl.flush()

    def track(self, latest: ScanProgress) -> None:
        """Keep the scan's latest progress and pass it on to `on_progress`."""
        self.latest = latest
        if self.on_progress is not None:
            self.on_progress(latest)

    def findings(self, batch: list[Finding]) -> None:
        """Store a batch of findings (one transaction) and write them to the JSONL file."""
        self.store.findings.add(batch)
        if self.jsonl is not None:
            self.jsonl.writelines(json.dumps(f.to_record(), ensure_ascii=False) + "\n" for f in batch)
            self.jsonl.flush()

    def checkpoint(self, marks: list[ShardMark], stats: DiscoveryStats) -> None:
        job = self.job
        self.store.scans.checkpoint(
            job.scan_id,
            {
                "shards": [mark.to_record() for mark in marks],
                "probes": job.probes + stats.probes,
                "open": job.open_ports + stats.open,
                "pid": os.getpid(),
                "host": socket.gethostname(),
            },
        )

    def finish(self, progress: ScanProgress | None, status: str) -> ScanProgress:
        """Close the scan's row with its counts (a resumed scan's over all its runs) and its change events."""
        job, store = self.job, self.store
        progress = progress or ScanProgress(DiscoveryStats())
        if job.resumed:
            found = [finding.exposed for finding in store.findings.of_scan(job.scan_id)]
            progress.services, progress.exposed = len(found), sum(found)
        stats = progress.discovery
        store.scans.finish(
            job.scan_id,
            utc_now(),
            status,
            probes=job.probes + stats.probes,
            open_ports=job.open_ports + stats.open,
            services=progress.services,
            exposed=progress.exposed,
        )
        store.events.store_changes(job.scan_id)  # closed: only when it covered its whole space
        return progress

    def deliver(self, alerts: AlertConfig | None) -> None:
        """Deliver the closed scan's change events by the rules of `alerts` (None: none)."""
        if alerts is not None:
            from leaksonar.notify.alerts import deliver_events  # httpx/SMTP: loaded only when alerting

            deliver_events(self.store.events.find(scan_id=self.job.scan_id), alerts, self.store)


def run_job(
    job: ScanJob,
    store: Store,
    *,
    jsonl: TextIO | None = None,
    on_progress: Callable[[ScanProgress], None] | None = None,
    alerts: AlertConfig | None = None,
    workers: list[Worker] | None = None,
) -> ScanProgress:
    """Run `job` with the `workers` `start_workers` forked for it (None: forked here), storing findings
    in batches as they come (and writing them to `jsonl`) and checkpointing, then deliver the scan's change
    events by the rules of `alerts`. A resumed scan's progress counts its services and exposed services
    over all its runs."""
    recorder = Recorder(job, store, jsonl, on_progress)
    if job.resumed:
        store.scans.reopen(job.scan_id)
    recorder.header()
    recorder.checkpoint(list(job.marks), DiscoveryStats())
    if workers is None:
        workers = start_workers(job.space, job.options, job.scan_id, [mark.position for mark in job.marks])
    status = "failed"
    try:
        uvloop.run(
            run_scan(
                job.space,
                job.options,
                job.scan_id,
                recorder.findings,
                recorder.track,
                workers,
                marks=job.marks,
                on_checkpoint=recorder.checkpoint,
            )
        )
        status = "done"
    except (KeyboardInterrupt, WorkerInterrupted):
        status = "interrupted"
        raise KeyboardInterrupt from None
    finally:
        progress = recorder.finish(recorder.latest, status)
    recorder.deliver(alerts)
    return progress


def scan_into_store(
    space: TargetSpace,
    options: ScanOptions,
    store: Store,
    *,
    jsonl: TextIO | None = None,
    on_progress: Callable[[ScanProgress], None] | None = None,
    alerts: AlertConfig | None = None,
) -> tuple[str, ScanProgress]:
    """Scan `space` as a new job (see `run_job`); returns the scan id and the progress."""
    job = new_job(space, options, store)
    return job.scan_id, run_job(job, store, jsonl=jsonl, on_progress=on_progress, alerts=alerts)
