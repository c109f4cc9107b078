"""Scale-out benchmark: one vs two `leaksonar worker`s on the loopback lab, and what a finding costs in
PostgreSQL.

    .venv/bin/python bench/scaleout.py [--closed 127.94.0.0/18] [--shards 32] [--repeat 2] [--lab-dir DIR]

A broker Redis and a store PostgreSQL are started on 127.91.200.1, and the lab (or the running one in
--lab-dir) on loopback. The space is the lab's /24 plus a block of closed loopback addresses, times the
default database ports, with no rate limit. For 1 and then 2 workers (one process each), a
`scan --distributed` is timed from submission to exit, `--repeat` times (median). Then the size of the
findings, services and events tables in PostgreSQL per row. Everything targets 127.0.0.0/8 only. Prints
a table and writes bench/results/scaleout.json.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import LEAKSONAR, LOOPBACK, describe, machine, save
from sqlalchemy import text

from leaksonar.lab import LabError, lab_down, lab_up, read_manifest
from leaksonar.lab.backends import Backends, backends
from leaksonar.store.db import Store
from leaksonar.targets import default_ports

LAB_BASES = [f"127.96.{16 * k}.0" for k in range(8)]
"""Where the bench's own lab may run: the first of these whose addresses are free."""


@contextmanager
def lab(directory: str | None) -> Iterator[dict[str, Any]]:
    if directory:
        yield read_manifest(Path(directory))
        return
    with tempfile.TemporaryDirectory(prefix="leaksonar-bench-lab-") as tmp:
        os.chmod(tmp, 0o755)
        try:
            yield _first_free_lab(Path(tmp))
        finally:
            if (Path(tmp) / "manifest.json").exists():
                lab_down(Path(tmp))


def _first_free_lab(directory: Path) -> dict[str, Any]:
    for base in LAB_BASES:
        try:
            return lab_up(directory, base)
        except LabError as exc:
            if "in use" not in str(exc):
                raise
    sys.exit(f"no free lab base among {', '.join(LAB_BASES)}")


@contextmanager
def workers(cluster: Backends, count: int, logs: Path) -> Iterator[list[float]]:
    """`count` workers; on exit, the list holds the CPU seconds each used (with its pool processes)."""
    procs, cpu = [], []
    try:
        for n in range(count):
            log = logs / f"worker{count}-{n}.log"
            argv = [LEAKSONAR, "worker", "--broker", cluster.broker, "--db", cluster.db]
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
                )
            while "ready." not in log.read_text():
                if procs[-1].poll() is not None:
                    sys.exit(f"worker exited: {log.read_text()[-800:]}")
                time.sleep(0.05)
        yield cpu
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            _, _, usage = os.wait4(proc.pid, 0)
            cpu.append(usage.ru_utime + usage.ru_stime)


def scan(cluster: Backends, targets: list[str], shards: int) -> tuple[float, str]:
    """Seconds from submission to exit, and the scan's id."""
    argv = [LEAKSONAR, "scan", *targets, "--distributed", "--broker", cluster.broker, "--db", cluster.db]
    argv += ["--shards", str(shards), "--scope", LOOPBACK]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"scan failed: {done.stderr[-800:]}")
    return elapsed, done.stdout.rsplit("scan ", 1)[1].split(":", 1)[0]


def table_sizes(store: Store) -> dict[str, dict[str, float]]:
    """Rows and bytes per row (heap + indexes + TOAST) of the tables that grow with every scan."""
    sizes = {}
    with store.engine.connect() as conn:
        for table in ("findings", "services", "events", "scans"):
            rows = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0
            size = conn.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar() or 0
            sizes[table] = {"rows": rows, "bytes_per_row": round(size / rows) if rows else 0}
        for table in ("findings", "services"):
            record = conn.execute(text(f"SELECT avg(octet_length(record::text)) FROM {table}")).scalar()
            sizes[table]["record_json_bytes"] = round(float(record or 0))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--closed", default="127.94.0.0/18", help="closed loopback block added to the lab's /24"
    )
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--lab-dir", help="use the lab running in this directory")
    args = parser.parse_args()
    if not args.closed.startswith("127."):
        sys.exit("--closed: a loopback block, e.g. 127.94.0.0/18")
    os.environ["LEAKSONAR_SCOPE"] = LOOPBACK
    runs: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {}
    with (
        lab(args.lab_dir) as manifest,
        backends("127.91.200.1") as cluster,
        tempfile.TemporaryDirectory() as logs,
    ):
        block = manifest["base"].rsplit(".", 1)[0] + ".0/24"
        targets = [block, args.closed]
        addresses = 256 + 2 ** (32 - int(args.closed.split("/")[1]))
        pairs = addresses * len(default_ports())
        for count in (1, 2):
            with workers(cluster, count, Path(logs)) as cpu[count]:
                for _ in range(max(1, args.repeat)):
                    seconds, scan_id = scan(cluster, targets, args.shards)
                    runs[count].append(seconds)
        store = Store(cluster.db)
        last = store.scans.get(scan_id)
        sizes = table_sizes(store)
    one, two = (statistics.median(runs[n]) for n in (1, 2))
    per_cpu = pairs * len(runs[1]) / sum(cpu[1])
    results = {
        "space": {"targets": targets, "pairs": pairs, "shards": args.shards, "rate": None},
        "services": last.services if last else None,
        "seconds": {"1": runs[1], "2": runs[2]},
        "pairs_per_second": {"1": round(pairs / one), "2": round(pairs / two)},
        "worker_cpu_seconds": {str(n): cpu[n] for n in (1, 2)},
        "pairs_per_worker_cpu_second": round(per_cpu),
        "ratio": round(one / two, 2),
        "postgresql": sizes,
    }
    path = save("scaleout", results)
    print(f"{describe(machine())}, load {os.getloadavg()[0]:.1f}")
    print(
        f"space: {' + '.join(targets)} x {len(default_ports())} ports = {pairs:,} pairs, {args.shards} shards"
    )
    print(f"{'workers':>8} {'median s':>9} {'pairs/s':>9}")
    for n, median in ((1, one), (2, two)):
        print(f"{n:>8} {median:>9.2f} {pairs / median:>9,.0f}")
    print(f"two workers / one: {one / two:.2f}x; one worker: {per_cpu:,.0f} pairs per CPU second")
    print(f"{'table':>9} {'rows':>6} {'bytes/row':>10} {'record JSON':>12}")
    for table, size in sizes.items():
        record = size.get("record_json_bytes", "")
        print(f"{table:>9} {size['rows']:>6} {size['bytes_per_row']:>10} {record:>12}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
