"""Storage benchmark: synthetic findings (bench/index.py's) stored the way a scan stores them,
`Recorder.findings` in the engine's batches (engine.BATCH_SIZE, one transaction each), and one at a time
as scans stored them before (one transaction per finding), into SQLite and PostgreSQL; then the change
events of a second scan of the same services (`store.events.record`, what a scan computes at its end).

CPU µs: this process's CPU per finding (SQLite's work included; PostgreSQL's server is another process).

Run: .venv/bin/python bench/ingest.py [--findings 20000] [--one-by-one 2000] [--json F]
     [--db postgresql://postgres@127.0.0.1:PORT/postgres]
Without --db, a PostgreSQL 15 is started on 127.79.8.1 for the run (leaksonar.lab.backends), as the tests
start theirs. The records are synthetic; the only traffic is to local servers on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from index import PROTOCOLS, synthetic

from leaksonar.formats import utc_now
from leaksonar.model import Finding
from leaksonar.run.job import Recorder, new_job
from leaksonar.scan import engine
from leaksonar.scan.engine import ScanOptions
from leaksonar.store.db import Store
from leaksonar.targets import TargetSpace

POSTGRES_IP = "127.79.8.1"
BATCH_SIZE = getattr(engine, "BATCH_SIZE", 1)
"""Findings the engine stores together (1 before issue 16, whose code this benchmark also measures when
it is first on PYTHONPATH)."""
SPACE = TargetSpace([(0x7F000000, 0x7FFFFFFF)], tuple(sorted({port for port, _ in PROTOCOLS.values()})), 1)
"""What the synthetic scans cover: 127.0.0.0/8 on the synthetic protocols' ports."""
_databases = itertools.count()


@contextmanager
def postgres_server(url: str | None) -> Iterator[str]:
    """`url`, or a PostgreSQL started for the benchmark."""
    if url:
        yield url
        return
    from leaksonar.lab.backends import backends

    with backends(POSTGRES_IP) as started:
        yield started.db


def new_database(kind: str, where: str) -> str:
    """A new empty index: a file in the directory `where`, or a database on the PostgreSQL at `where`."""
    n = next(_databases)
    if kind == "sqlite":
        return str(Path(where) / f"ingest-{n}.db")
    import psycopg

    name = f"ingest_{os.getpid()}_{n}"
    with psycopg.connect(where, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{where.rsplit('/', 1)[0]}/{name}"


def store_scan(store: Store, found: list[Finding], batch: int) -> tuple[str, float, float]:
    """Record a scan and store `found` as its findings through `Recorder.findings`, `batch` at a time;
    the scan's id, and the seconds and this process's CPU seconds the storing took."""
    job = new_job(SPACE, ScanOptions(), store)
    recorder = Recorder(job, store, None)
    mine = [replace(f, scan_id=job.scan_id) for f in found]
    write = getattr(recorder, "findings", None) or (lambda b: [recorder.finding(f) for f in b])  # before
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(mine), batch):
        write(mine[start : start + batch])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.scans.finish(job.scan_id, utc_now(), "done", services=len(mine))
    return job.scan_id, elapsed, cpu


def rescanned(found: list[Finding]) -> list[Finding]:
    """The same services scanned again: every 7th gone (closed), every 5th grown tenfold and critical."""
    again = []
    for i, f in enumerate(found):
        if i % 7 == 3:
            continue
        if i % 5 == 1 and f.rows and f.assessment is not None:
            f = replace(f, rows=f.rows * 10, assessment=replace(f.assessment, severity="critical"))
        again.append(f)
    return again


def measure(kind: str, where: str, found: list[Finding], one_by_one: int) -> dict[str, Any]:
    """Findings/s batched and one at a time, and the events of a second scan, on new indexes."""
    store = Store(new_database(kind, where))
    _, batched, batched_cpu = store_scan(store, found, BATCH_SIZE)
    second, _, _ = store_scan(store, rescanned(found), BATCH_SIZE)
    started = time.perf_counter()
    events = store.events.record(second)
    events_s = time.perf_counter() - started
    store.close()
    store = Store(new_database(kind, where))
    _, single, single_cpu = store_scan(store, found[:one_by_one], 1)
    store.close()
    return {
        "database": kind,
        "findings": len(found),
        "batched_s": round(batched, 2),
        "batched_per_s": round(len(found) / batched),
        "batched_cpu_us": round(batched_cpu / len(found) * 1e6),
        "one_by_one": one_by_one,
        "one_by_one_s": round(single, 2),
        "one_by_one_per_s": round(one_by_one / single),
        "one_by_one_cpu_us": round(single_cpu / one_by_one * 1e6),
        "events_services": len(found),
        "events": len(events),
        "events_s": round(events_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=20_000, help="findings stored in batches")
    parser.add_argument("--one-by-one", type=int, default=2_000, help="findings stored one at a time")
    parser.add_argument("--db", help="a PostgreSQL server (postgresql:// URL on 127.0.0.0/8) to use")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.findings < 1 or not 1 <= args.one_by_one <= args.findings:
        sys.exit("--findings must be at least 1, --one-by-one between 1 and --findings")
    found = list(synthetic(args.findings))
    results = []
    with tempfile.TemporaryDirectory() as tmp, postgres_server(args.db) as server:
        for kind, where in (("sqlite", tmp), ("postgresql", server)):
            results.append(measure(kind, where, found, args.one_by_one))
    table = Table(
        title=f"{args.findings:,} findings in batches of {BATCH_SIZE} vs {args.one_by_one:,} one at a time "
        f"({platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})"
    )
    columns = (
        "database",
        "batched /s",
        "CPU µs",
        "one at a time /s",
        "CPU µs",
        "x",
        "events: services",
        "events",
        "s",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "database" else "right")
    for r in results:
        table.add_row(
            r["database"],
            f"{r['batched_per_s']:,}",
            f"{r['batched_cpu_us']:,}",
            f"{r['one_by_one_per_s']:,}",
            f"{r['one_by_one_cpu_us']:,}",
            f"{r['batched_per_s'] / r['one_by_one_per_s']:.1f}",
            f"{r['events_services']:,}",
            f"{r['events']:,}",
            f"{r['events_s']:.2f}",
        )
    Console(width=None if sys.stdout.isatty() else 150).print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
