"""The Celery tasks: scan one shard into the store, and finish a scan whose shards are all done."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import redis
import uvloop
from celery import Task

from leaksonar.formats import utc_now
from leaksonar.model import Finding
from leaksonar.run.distributed import state
from leaksonar.run.distributed.app import app
from leaksonar.run.distributed.options import LeaseSettings, WorkerOptions
from leaksonar.run.distributed.ratelimit import SharedBucket
from leaksonar.run.distributed.shards import describe, rebuild
from leaksonar.run.job import record_scan
from leaksonar.scan.engine import ScanProgress, run_scan
from leaksonar.store.db import Store
from leaksonar.targets import Scope, TargetError, TargetSpace

log = logging.getLogger(__name__)

_REPORT_EVERY = 0.5
SWEEP_EVERY = 2.0
"""Seconds between the sweeps of `leaksonar beat`'s passes (`sweep_passes`)."""


@cache
def broker() -> redis.Redis:
    return redis.Redis.from_url(app.conf.broker_url, socket_timeout=10)


@cache
def store() -> Store:
    """This worker process's index (`leaksonar worker --db` / LEAKSONAR_DB)."""
    return Store()


def shard_failed(client: redis.Redis, scan_id: str, message: str) -> None:
    """Report a shard this worker could not scan to the submitter (its first error ends the scan)."""
    log.warning("scan %s: %s", scan_id, message)
    state.add_error(client, scan_id, message)


@app.task(bind=True, name="leaksonar.scan_shard", acks_late=True, reject_on_worker_lost=True)
def scan_shard(
    self: Task, scan_id: str, space: dict[str, Any], part: int, parts: int, options: dict[str, Any]
) -> None:
    """Scan shard `part` of `parts` of `space` and store its findings, holding the shard's lease. A copy
    delivered again once the shard is done (the broker's visibility timeout passed after its worker died
    and the shard was queued again) ends at once and is acknowledged; running the shard again stores
    the same rows again, nothing more."""
    client = broker()
    scan = store().scans.get(scan_id)
    if scan is None:
        shard_failed(
            client, scan_id, f"shard {part}: scan {scan_id} is not in the worker's index {store().db}"
        )
        return
    if scan.status != "running":
        return
    if state.is_done(client, scan_id, part):
        log.info("scan %s: shard %d is already done: this copy of its task ends here", scan_id, part)
        return
    try:
        shard = rebuild(space, part, parts, Scope.from_env(None))
    except TargetError as exc:
        shard_failed(client, scan_id, f"shard {part}: {exc}")
        return
    settings = LeaseSettings.from_env()
    lease = state.Lease(client, scan_id, part, settings)
    if not lease.acquire():  # another worker runs this shard: look again when its lease could lapse
        raise self.retry(countdown=settings.ttl, max_retries=None)
    with lease:
        if state.is_done(client, scan_id, part):  # finished while this copy waited
            return
        rate = options["rate"]
        bucket = SharedBucket(client, state.key(scan_id, "rate"), rate) if rate else None
        reported = 0.0

        def on_findings(batch: list[Finding]) -> None:
            store().findings.add(batch)

        def on_progress(progress: ScanProgress) -> None:
            nonlocal reported
            if time.monotonic() - reported >= _REPORT_EVERY:
                reported = time.monotonic()
                lease.report(progress)

        try:
            progress = uvloop.run(
                run_scan(shard, WorkerOptions.from_json(options, bucket), scan_id, on_findings, on_progress)
            )
        except Exception as exc:
            shard_failed(client, scan_id, f"shard {part}: {type(exc).__name__}: {exc}")
            raise
        lease.done(progress)
        log.info(
            "scan %s: shard %d of %d done: %d services, %d exposed",
            scan_id, part + 1, parts, progress.services, progress.exposed,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class QueuedScan:
    """A scan whose shards are queued: what each shard's task is given."""

    scan_id: str
    space: dict[str, Any]
    parts: int
    options: dict[str, Any]

    def queue(self, part: int) -> None:
        scan_shard.apply_async((self.scan_id, self.space, part, self.parts, self.options))

    def requeue_lapsed(self, client: redis.Redis) -> None:
        """Queue again the shards whose worker died (their lease lapsed before they were done)."""
        for part in state.lapsed(client, self.scan_id):
            log.warning(
                "scan %s: the worker of shard %d is gone (its lease lapsed): queued again", self.scan_id, part
            )
            self.queue(part)


def enqueue(
    index: Store, space: TargetSpace, scope: Scope | None, options: dict[str, Any], parts: int
) -> QueuedScan:
    """Record a new scan of `space` in `index` and queue its `parts` shards (`options`: a ScanOptions as
    `dataclasses.asdict`)."""
    scan_id = record_scan(index, space, {**options, "shards": parts})
    queued = QueuedScan(scan_id, describe(space, scope), parts, options)
    for part in range(parts):
        queued.queue(part)
    return queued


def finish(index: Store, scan_id: str, status: str, progress: ScanProgress) -> None:
    """Close the scan with its summed counters and compute its change events (once: events are unique
    per scan, service and type)."""
    stats = progress.discovery
    index.scans.finish(
        scan_id,
        utc_now(),
        status,
        probes=stats.probes,
        open_ports=stats.open,
        services=progress.services,
        exposed=progress.exposed,
    )
    index.events.record(scan_id)


@app.task(name="leaksonar.sweep_passes", acks_late=False)
def sweep_passes() -> None:
    """Look after the passes nobody waits for (those of `leaksonar beat`, which queues this task every
    SWEEP_EVERY seconds): queue again the shards of workers that died, and finish each pass whose shards
    are done (or that a worker could not scan). A sweep lost with its worker is followed by the next."""
    client = broker()
    for described in state.passes(client):
        queued = QueuedScan(**json.loads(described))
        now = state.status(client, queued.scan_id, time.monotonic())
        if not now.errors and now.done < queued.parts:
            queued.requeue_lapsed(client)
        elif state.claim_finish(client, queued.scan_id):
            scan = store().scans.get(queued.scan_id)
            if scan is not None and scan.status == "running":
                status = "failed" if now.errors else "done"
                finish(store(), queued.scan_id, status, now.progress)
                log.info("scan %s: %s, its change events recorded", queued.scan_id, status)
            state.forget_pass(client, queued.scan_id)


@app.task(name="leaksonar.watch_pass", acks_late=True, reject_on_worker_lost=True)
def watch_pass(space: dict[str, Any], options: dict[str, Any], parts: int) -> None:
    """One pass of a watch scheduled by `leaksonar beat`: queue the shards, and the pass for the sweeps."""
    whole = rebuild(space, 0, 1, Scope.from_env(None))
    scope = Scope.parse(space["scope"]) if space["scope"] else None
    queued = enqueue(store(), whole, scope, options, parts)
    state.add_pass(broker(), queued.scan_id, json.dumps(asdict(queued)))
    log.info("scan %s: a watch pass of %s queued in %d shards", queued.scan_id, whole.describe(), parts)
