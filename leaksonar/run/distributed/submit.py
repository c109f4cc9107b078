"""The submitting side of a distributed scan: queue the shards, follow their progress, finish the scan
and write its findings, as a local scan does."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, TextIO

import redis

from leaksonar.run.distributed import state
from leaksonar.run.distributed.app import configure
from leaksonar.run.distributed.tasks import QueuedScan, enqueue, finish
from leaksonar.run.job import ScanInterrupted, ScanOutcome, open_index
from leaksonar.scan.engine import ScanOptions, ScanProgress
from leaksonar.targets import Scope, TargetSpace

if TYPE_CHECKING:
    from leaksonar.notify.rules import AlertConfig

SHARD_PAIRS = 250_000
"""Address/port pairs per shard by default (a few minutes of one worker at a polite rate)."""
_POLL = 0.2


class ShardError(Exception):
    """A worker could not scan a shard; the message is the first worker's error, one line."""


def default_shards(size: int) -> int:
    """At least 16 shards (to spread over workers), at most SHARD_PAIRS pairs each."""
    return max(1, min(size, max(16, -(-size // SHARD_PAIRS))))


def wait(client: redis.Redis, queued: QueuedScan, on_progress: Callable[[ScanProgress], None] | None) -> None:
    """Until every shard is done, queueing again the shards of workers that died; raise ShardError when
    a worker reports one it could not scan."""
    scan_id, started = queued.scan_id, time.monotonic()
    while True:
        queued.requeue_lapsed(client)
        now = state.status(client, scan_id, started)
        if on_progress is not None:
            on_progress(now.progress)
        if now.errors:
            more = f" (and {len(now.errors) - 1} more)" if len(now.errors) > 1 else ""
            raise ShardError(f"scan {scan_id} failed: {now.errors[0]}{more}")
        if now.done >= queued.parts:
            return
        time.sleep(_POLL)


def distributed_scan(
    space: TargetSpace,
    options: ScanOptions,
    scope: Scope | None,
    db: str | None,
    *,
    broker: str | None,
    shards: int | None,
    jsonl: TextIO | None = None,
    on_progress: Callable[[ScanProgress], None] | None = None,
    alerts: AlertConfig | None = None,
) -> ScanOutcome:
    """Scan `space` on the workers of `broker` into the index `db` (which the workers share); its outcome
    has the workers' summed counters. Raises BrokerError, StoreError, ShardError, ScanInterrupted."""
    client = configure(broker)
    store = open_index(db)
    parts = shards or default_shards(space.size)
    queued = enqueue(store, space, scope, asdict(options), parts)
    scan_id, status = queued.scan_id, "failed"
    try:
        wait(client, queued, on_progress)
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"  # shards not yet started are skipped by the workers
        raise ScanInterrupted(scan_id, resumable=False) from None
    finally:
        progress = state.status(client, scan_id, time.monotonic()).progress
        finish(store, scan_id, status, progress)
    row = store.scans.get(scan_id)
    if jsonl is not None and row is not None:
        jsonl.write(json.dumps(row.header(resumed=False), ensure_ascii=False) + "\n")
        for finding in store.findings.of_scan(scan_id):
            jsonl.write(json.dumps(finding.to_record(), ensure_ascii=False) + "\n")
        jsonl.flush()
    if alerts is not None:
        from leaksonar.notify.alerts import deliver_events

        deliver_events(store.events.find(scan_id=scan_id), alerts, store)
    return ScanOutcome(scan_id, progress, store)
