"""Scale-out: a broker Redis and a store PostgreSQL on loopback, `leaksonar worker` processes, and
`leaksonar scan --distributed` against the lab."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import lab_block, leaksonar
from sqlalchemy import func, select

from leaksonar.lab.backends import Backends, backends
from leaksonar.run.distributed.app import BrokerError, configure
from leaksonar.run.distributed.ratelimit import SharedBucket
from leaksonar.run.distributed.shards import describe, rebuild
from leaksonar.store.db import Store
from leaksonar.store.rows import ScanRow
from leaksonar.store.schema import findings, scans
from leaksonar.targets import Scope, ScopeError, TargetError, build_space

VISIBILITY = 4
"""Seconds before the broker hands a dead worker's shard to another (production: 3600)."""
LEASE = 2


@pytest.fixture(scope="module")
def cluster() -> Iterator[Backends]:
    with backends(f"127.91.{os.getpid() % 250}.1") as running:
        yield running


class Workers:
    """`leaksonar worker` processes, each in its own process group, logging to a file."""

    def __init__(self, cluster: Backends, directory: Path) -> None:
        self.cluster, self.directory = cluster, directory
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.directory / f"worker{len(self.procs)}.log"
        env = {
            **os.environ,
            "LEAKSONAR_VISIBILITY_TIMEOUT": str(VISIBILITY),
            "LEAKSONAR_LEASE_TTL": str(LEASE),
        }
        argv = [sys.executable, "-m", "leaksonar", "worker", "--broker", self.cluster.broker]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*argv, "--db", self.cluster.db],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        deadline = time.monotonic() + 30
        while "ready." not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return (self.directory / f"worker{self.procs.index(proc)}.log").read_text()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def workers(cluster: Backends, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(cluster, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _records(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
    lines = path.read_text().splitlines()
    records = {(r["ip"], r["port"]): r for r in map(json.loads, lines)}
    assert len(records) == len(lines), "a service appears twice"
    return records


def _essentials(records: dict[tuple[str, int], dict[str, Any]]) -> dict[tuple[str, int], tuple[Any, ...]]:
    return {k: (r["protocol"], r["severity"], r["dataset"]["rows"]) for k, r in records.items()}


def _scan(store: Store, scan_id: str) -> ScanRow:
    scan = store.scans.get(scan_id)
    assert scan is not None
    return scan


def _scan_id(output: str) -> str:
    return output.split("scan ", 1)[1].split(":", 1)[0]


@pytest.mark.slow
def test_distributed_scan_finds_what_a_local_scan_finds(
    lab: dict[str, Any], scanned: dict[str, Any], cluster: Backends, workers: Workers, tmp_path: Path
) -> None:
    workers.start()
    workers.start()
    out = tmp_path / "dist.jsonl"
    result = leaksonar(
        "scan", lab_block(lab), "--distributed", "--broker", cluster.broker, "--db", cluster.db,
        "--shards", "8", "--jsonl", str(out),
    )  # fmt: skip
    assert _essentials(_records(out)) == _essentials(scanned["records"])
    scan = _scan(Store(cluster.db), _scan_id(result.stdout))
    assert scan.status == "done" and scan.probes == scan.size
    assert scan.services == len(scanned["records"])
    both = [w for w in workers.procs if "succeeded" in workers.log(w)]
    assert len(both) == 2, "both workers took shards"


@pytest.mark.slow
def test_a_killed_worker_loses_nothing_and_duplicates_nothing(
    lab: dict[str, Any], scanned: dict[str, Any], cluster: Backends, workers: Workers, tmp_path: Path
) -> None:
    """SIGKILL a worker while it scans a shard: the shard comes back to the other worker once the
    visibility timeout passes, and the scan ends with every pair probed once and every service once."""
    victim, survivor = workers.start(), workers.start()
    out = tmp_path / "dist.jsonl"
    argv = [
        sys.executable, "-m", "leaksonar", "scan", lab_block(lab), "127.92.0.0/22", "--distributed",
        "--broker", cluster.broker, "--db", cluster.db, "--shards", "12", "--rate", "5000",
        "--jsonl", str(out), "-q",
    ]  # fmt: skip
    submit = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while True:  # kill the victim in the middle of a shard
        log = workers.log(victim)
        taken = re.findall(r"scan_shard\[([0-9a-f-]+)\] received", log)
        running = [t for t in taken if f"{t}] succeeded" not in log]
        if running:
            break
        assert time.monotonic() < deadline and submit.poll() is None, log[-2000:]
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)
    _, errors = submit.communicate(timeout=60)
    assert submit.returncode == 0, errors
    assert f"{running[0]}] succeeded" in workers.log(survivor), "the killed shard was redelivered"
    lab_records = {k: r for k, r in _records(out).items() if k[0].startswith(lab["base"].rsplit(".", 1)[0])}
    assert _essentials(lab_records) == _essentials(scanned["records"])
    store = Store(cluster.db)
    scan_id = next(iter(_records(out).values()))["scan_id"]
    scan = _scan(store, scan_id)
    assert scan.status == "done"
    assert scan.probes == scan.size == (256 + 1024) * len(scan.ports.split(","))
    with store.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(findings).where(findings.c.scan_id == scan_id))
        assert rows.scalar() == len(scanned["records"])
    client = redis.Redis.from_url(cluster.broker)
    assert client.scard(f"leaksonar:scan:{scan_id}:done") == 12


@pytest.mark.slow
def test_beat_queues_a_pass_on_every_interval(cluster: Backends, workers: Workers, tmp_path: Path) -> None:
    workers.start()
    argv = [sys.executable, "-m", "leaksonar", "beat", "127.93.0.0/28", "-p", "1-10", "--every", "2s"]
    argv += ["--broker", cluster.broker, "--shards", "3"]
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}  # the schedule's state file
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        beat = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    store, deadline = Store(cluster.db), time.monotonic() + 45
    try:
        while True:
            with store.engine.connect() as conn:
                passes = conn.execute(select(scans).where(scans.c.targets == "127.93.0.0-127.93.0.15")).all()
            done = [p for p in passes if p.status == "done"]
            if len(done) >= 2:
                break
            assert time.monotonic() < deadline and beat.poll() is None, log.read_text()[-2000:]
            time.sleep(0.5)
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=15)
    assert all(p.probes == p.size == 160 for p in done)
    assert (tmp_path / "leaksonar" / "beat-schedule").exists() or any(
        tmp_path.glob("leaksonar/beat-schedule*")
    )


def test_the_rate_limit_is_shared_by_all_workers(cluster: Backends) -> None:
    client = redis.Redis.from_url(cluster.broker)
    key, rate, seconds = f"leaksonar:rate:test:{time.time_ns()}", 2000.0, 1.0
    counts: list[int] = []

    def take() -> None:
        bucket, taken, end = SharedBucket(client, key, rate), 0, time.monotonic() + seconds
        while time.monotonic() < end:
            if wait := bucket.delay():
                time.sleep(wait)
            else:
                taken += 1
        counts.append(taken)

    threads = [threading.Thread(target=take) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 0.8 * rate * seconds <= sum(counts) <= 1.2 * rate * seconds + rate / 20
    assert min(counts) > 0


def test_a_worker_rechecks_the_scope_of_its_shard() -> None:
    space = build_space(["10.1.0.0/16"], (6379,), scope=Scope.parse("10.0.0.0/8"), seed=1)
    with pytest.raises(ScopeError, match=r"outside the allowed scope 127\.0\.0\.0/8"):
        rebuild(describe(space, Scope.parse("10.0.0.0/8")), 0, 4, Scope.parse("127.0.0.0/8"))
    wide = describe(build_space(["127.0.0.0/24"], (6379,), seed=1), None)
    with pytest.raises(ScopeError):  # the submitter's scope is checked too
        rebuild({**wide, "scope": "127.0.1.0/24"}, 0, 4, None)
    blocked = {**describe(space, None), "targets": ["10.0.0.0-11.255.255.255"]}  # 10/8 is reserved
    with pytest.raises(TargetError, match="blocked space"):
        rebuild(blocked, 0, 4, None)


def test_shards_partition_the_space() -> None:
    space = build_space(["127.0.0.0/23", "127.1.0.0-77"], (1, 80, 6379), seed=7)
    for parts in (1, 3, 16):
        walked = [pair for part in range(parts) for pair in rebuild(describe(space, None), part, parts, None)]
        assert sorted(walked) == sorted(space) and len(walked) == space.size


def test_distributed_scan_needs_a_reachable_redis_broker(tmp_path: Path) -> None:
    db = str(tmp_path / "index.db")
    env_free = {k: v for k, v in os.environ.items() if k != "LEAKSONAR_BROKER"}
    for extra, message in (
        ([], "no broker: give --broker"),
        (["--broker", "redis://127.0.0.1:1/0"], "cannot reach the broker redis://127.0.0.1:1/0"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "leaksonar", "scan", "127.0.0.1", "--distributed", "--db", db, *extra],
            capture_output=True, text=True, env=env_free, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    with Store(db).engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(scans)).scalar() == 0
    with pytest.raises(BrokerError, match="is not a Redis URL"):
        configure("amqp://127.0.0.1")
