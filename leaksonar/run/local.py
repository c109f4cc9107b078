"""A scan on this machine, as `leaksonar scan` runs it: fork the discovery workers, open the index, record
the scan (or reopen an unfinished one), then run it and deliver its change events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from leaksonar.run.job import (
    ScanInterrupted,
    ScanJob,
    ScanOutcome,
    new_job,
    open_index,
    resume_job,
    run_job,
    start_workers,
)
from leaksonar.scan.engine import ScanOptions, ScanProgress, new_scan_id
from leaksonar.scan.workers import Worker, stop_workers
from leaksonar.targets import Scope, TargetSpace

if TYPE_CHECKING:
    from leaksonar.notify.rules import AlertConfig
    from leaksonar.store.db import Store


@dataclass(frozen=True, slots=True)
class LocalScan:
    """A scan ready to run here."""

    job: ScanJob
    store: Store
    workers: list[Worker] | None
    """Its discovery workers, already probing (None: `run` forks them)."""


def start(space: TargetSpace, options: ScanOptions, db: str | None) -> LocalScan:
    """A new scan of `space` into the index `db`. Its discovery workers probe from now on, while the index
    opens (when it cannot, they are stopped). Raises StoreError."""
    scan_id = new_scan_id()
    workers = start_workers(space, options, scan_id)
    try:
        store = open_index(db, writing=True)
    except BaseException:
        stop_workers(workers)
        raise
    return LocalScan(new_job(space, options, store, scan_id), store, workers)


def reopen(scan_id: str, db: str | None, scope: Scope | None) -> LocalScan:
    """The unfinished scan `scan_id` of the index `db`, to finish from its last checkpoint; its targets
    must lie in `scope`. Raises StoreError, ResumeError."""
    store = open_index(db, create=False, writing=True)
    return LocalScan(resume_job(scan_id, store, scope), store, None)


def run(
    scan: LocalScan,
    *,
    jsonl: TextIO | None = None,
    on_progress: Callable[[ScanProgress], None] | None = None,
    alerts: AlertConfig | None = None,
) -> ScanOutcome:
    """Run `scan` to its end (see `run_job`). Raises ScanInterrupted (Ctrl-C: it can be resumed)."""
    job, store = scan.job, scan.store
    try:
        progress = run_job(
            job, store, jsonl=jsonl, on_progress=on_progress, alerts=alerts, workers=scan.workers
        )
    except KeyboardInterrupt:
        raise ScanInterrupted(job.scan_id, resumable=True) from None
    return ScanOutcome(job.scan_id, progress, store)
