"""A scan as a job: run the engine over a target space and record every finding in the index."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, TextIO

import uvloop

from leaksonar.model import Finding
from leaksonar.scan.engine import ScanOptions, ScanProgress, new_scan_id, run_scan, utc_now
from leaksonar.scan.workers import fork_workers
from leaksonar.store.db import Store
from leaksonar.targets import TargetSpace

if TYPE_CHECKING:
    from leaksonar.monitor.rules import AlertConfig


def scan_into_store(
    space: TargetSpace,
    options: ScanOptions,
    store: Store,
    *,
    jsonl: TextIO | None = None,
    on_progress: Callable[[ScanProgress], None] | None = None,
    alerts: AlertConfig | None = None,
) -> tuple[str, ScanProgress]:
    """Scan `space`, storing each finding as it comes (and writing it to `jsonl`), then deliver the scan's
    change events by the rules of `alerts`; returns the scan id."""
    scan_id = new_scan_id()
    store.begin_scan(
        scan_id,
        utc_now(),
        targets=space.describe(),
        ports=",".join(map(str, space.ports)),
        size=space.size,
        options={**asdict(options), "seed": space.seed},
        coverage={"intervals": [list(i) for i in space.intervals], "ports": list(space.ports)},
    )

    def on_finding(finding: Finding) -> None:
        store.add_findings([finding])
        if jsonl is not None:
            jsonl.write(json.dumps(finding.to_record(), ensure_ascii=False) + "\n")
            jsonl.flush()

    progress: ScanProgress | None = None

    def track(latest: ScanProgress) -> None:
        nonlocal progress
        progress = latest
        if on_progress is not None:
            on_progress(latest)

    workers = fork_workers(space, options.workers, options.discovery()) if options.workers > 1 else []
    status = "failed"
    try:
        progress = uvloop.run(run_scan(space, options, scan_id, on_finding, track, workers))
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        stats = progress.discovery if progress else None
        store.finish_scan(
            scan_id,
            utc_now(),
            status,
            probes=stats.probes if stats else 0,
            open_ports=stats.open if stats else 0,
            services=progress.services if progress else 0,
            exposed=progress.exposed if progress else 0,
        )
        store.record_events(scan_id)  # closed services only when the scan covered its whole space
    assert progress is not None
    if alerts is not None:
        from leaksonar.monitor.alerts import deliver_events  # httpx/SMTP: loaded only when alerting

        deliver_events(store.events(scan_id=scan_id), alerts, store)
    return scan_id, progress
