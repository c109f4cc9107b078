"""The long-running processes of a deployment: `leaksonar worker` and `leaksonar beat`."""

from __future__ import annotations

import os
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import platformdirs

from leaksonar.run.distributed.app import app, configure
from leaksonar.run.distributed.options import LeaseSettings
from leaksonar.run.distributed.shards import describe
from leaksonar.run.distributed.submit import default_shards
from leaksonar.run.distributed.tasks import SWEEP_EVERY, sweep_passes, watch_pass
from leaksonar.scan.engine import ScanOptions
from leaksonar.store.db import DB_ENV, Store
from leaksonar.targets import Scope, TargetSpace


def run_worker(
    broker: str | None, db: str | None, concurrency: int, lease: LeaseSettings, log_level: str
) -> int:
    """Take shards from the broker's queue and scan them into `db`, `concurrency` at a time, each under
    a `lease`, until stopped (SIGTERM/Ctrl-C: the shards in hand are finished first). Celery logs at
    `log_level` through the root logger's handlers. Raises BrokerError, StoreError."""
    configure(broker)
    if db:
        os.environ[DB_ENV] = db  # the pool's processes open the index from the environment
    lease.export()
    Store(db).close()  # fail now if the index cannot be opened; pool processes open their own
    worker = app.Worker(
        concurrency=concurrency,
        pool="prefork",
        loglevel=log_level,
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
        quiet=True,
    )
    worker.start()
    return int(worker.exitcode or 0)


def run_beat(
    broker: str | None,
    space: TargetSpace,
    options: ScanOptions,
    scope: Scope | None,
    every: timedelta,
    shards: int | None,
    log_level: str,
) -> None:
    """Queue a pass of `space` now and then every `every`, and a sweep of the passes every few seconds;
    workers scan the shards, and the sweeps queue again those of dead workers and finish the passes.
    Raises BrokerError."""
    configure(broker)
    args = (describe(space, scope), asdict(options), shards or default_shards(space.size))
    app.conf.beat_schedule = {
        "leaksonar-watch": {"task": watch_pass.name, "schedule": every, "args": args},
        "leaksonar-sweep": {
            "task": sweep_passes.name,
            "schedule": SWEEP_EVERY,
            "options": {"expires": SWEEP_EVERY},  # one queued behind shards is dropped: the next follows
        },
    }
    watch_pass.apply_async(args)
    directory = Path(platformdirs.user_data_dir("leaksonar"))
    directory.mkdir(parents=True, exist_ok=True)
    app.Beat(schedule=str(directory / "beat-schedule"), loglevel=log_level, quiet=True).run()
