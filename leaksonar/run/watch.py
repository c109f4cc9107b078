"""Watch: scan the same targets again on a schedule, with the same options and index as `scan`; the change
events of each pass are computed when its scan finishes (scan_into_store)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from leaksonar.model import Event
from leaksonar.run.job import scan_into_store
from leaksonar.scan.engine import ScanOptions, ScanProgress
from leaksonar.store.db import Store
from leaksonar.targets import TargetSpace

if TYPE_CHECKING:
    from leaksonar.notify.rules import AlertConfig

OnPass = Callable[[str, ScanProgress, list[Event]], None]
"""Called after each pass with its scan id, its progress and the events it found."""


def watch(
    space: TargetSpace,
    options: ScanOptions,
    store: Store,
    *,
    every: timedelta,
    once: bool,
    on_pass: OnPass,
    sleep: Callable[[float], None] = time.sleep,
    alerts: AlertConfig | None = None,
) -> None:
    """Scan `space` now and then every `every` (from the start of one pass to the start of the next; a pass
    that takes longer is followed at once), until interrupted; just once with `once`. Each pass's events are
    delivered by the rules of `alerts`."""
    while True:
        started = time.monotonic()
        scan_id, progress = scan_into_store(space, options, store, alerts=alerts)
        on_pass(scan_id, progress, store.events.find(scan_id=scan_id))
        if once:
            return
        sleep(max(0.0, every.total_seconds() - (time.monotonic() - started)))
