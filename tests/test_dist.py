"""Scale-out: a broker Redis and a store PostgreSQL on loopback, `leaksonar worker` processes, and
`leaksonar scan --distributed` against the lab."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import jsonl_records, lab_block, leaksonar, new_postgres_database
from sqlalchemy import func, select

from leaksonar.lab.backends import Backends, backends
from leaksonar.run.distributed.app import VISIBILITY_ENV, BrokerError, app, configure
from leaksonar.run.distributed.options import HEARTBEAT_ENV, LEASE_ENV, LEASE_TTL, LeaseSettings
from leaksonar.run.distributed.ratelimit import SharedBucket
from leaksonar.run.distributed.shards import describe, rebuild
from leaksonar.run.distributed.state import Lease, lapsed
from leaksonar.run.distributed.tasks import enqueue
from leaksonar.scan.engine import ScanOptions
from leaksonar.store.db import Store
from leaksonar.store.rows import ScanRow
from leaksonar.store.schema import findings, scans
from leaksonar.targets import Scope, ScopeError, TargetError, TargetSpace, build_space, default_ports


@pytest.fixture(scope="module")
def cluster() -> Iterator[Backends]:
    with backends(f"127.91.{os.getpid() % 250}.1") as running:
        yield running


class Workers:
    """`leaksonar worker` processes with the default settings, each in its own process group, logging to
    a file."""

    def __init__(self, cluster: Backends, directory: Path) -> None:
        self.cluster, self.directory = cluster, directory
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.directory / f"worker{len(self.procs)}.log"
        env = {k: v for k, v in os.environ.items() if k not in (VISIBILITY_ENV, LEASE_ENV, HEARTBEAT_ENV)}
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
    _, found = jsonl_records(path)
    records = {(r["ip"], r["port"]): r for r in found}
    assert len(records) == len(found), "a service appears twice"
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


@contextmanager
def silent_services(pairs: list[tuple[str, int]]) -> Iterator[None]:
    """Ports that accept connections and never answer: identifying one takes twice the read timeout."""
    socks = []
    try:
        for ip, port in pairs:
            sock = socket.socket()
            sock.bind((ip, port))
            sock.listen(1024)  # the kernel completes the handshakes; nothing is ever read or written
            socks.append(sock)
        yield
    finally:
        for sock in socks:
            sock.close()


def _group_alive(group: int) -> bool:
    """Whether a process of process group `group` is still running."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False


def _lease_holder(client: redis.Redis, workers: Workers) -> tuple[subprocess.Popen[bytes], int] | None:
    """A worker holding a shard's lease (its token names the pool process), and the shard."""
    for name in client.scan_iter("leaksonar:scan:*:lease:*"):
        token = client.get(name)
        with contextlib.suppress(ProcessLookupError, TypeError):
            group = os.getpgid(int(token.split()[1]))
            for worker in workers.procs:
                if worker.pid == group:
                    return worker, int(name.rsplit(b":", 1)[1])
    return None


def _slow_pairs(space: TargetSpace, block: str, parts: int) -> list[tuple[str, int]]:
    """In each of the `parts` shards of `space`, its first pair in `block`: with a silent service there,
    every shard lasts 6 s or more."""
    prefix = block.rsplit(".", 1)[0] + "."
    shards = (rebuild(describe(space, None), part, parts, None) for part in range(parts))
    return [next(pair for pair in shard if pair[0].startswith(prefix)) for shard in shards]


def _kill_a_lease_holder(
    client: redis.Redis, workers: Workers, alive: Callable[[], bool]
) -> tuple[subprocess.Popen[bytes], int, float]:
    """SIGKILL the process group of the first worker seen holding a shard's lease, just after it began
    the shard; return the worker, its shard and the time of the kill, once none of its processes runs."""
    deadline = time.monotonic() + 30
    while (held := _lease_holder(client, workers)) is None:
        assert time.monotonic() < deadline and alive()
        time.sleep(0.02)
    victim, shard = held
    os.killpg(victim.pid, signal.SIGKILL)
    killed = time.monotonic()
    victim.wait(timeout=10)
    while _group_alive(victim.pid):  # the pool process dies with it: no orphan scans on
        assert time.monotonic() - killed < 10
        time.sleep(0.05)
    return victim, shard, killed


def _killed_scan_worker(
    lab: dict[str, Any], scanned: dict[str, Any], cluster: Backends, workers: Workers, tmp_path: Path
) -> None:
    """Run and check the scenario of `test_a_killed_worker_costs_a_lease_not_an_hour`: with the default
    settings, SIGKILL of a whole worker (its process group) in the middle of a shard:
    its lease lapses, the submitter queues the shard again, the other worker scans it, and the scan ends
    within two minutes with the findings of an undisturbed scan, each once. The killed worker's message,
    handed out again by the broker (as after its visibility timeout), finds the shard done and changes
    nothing."""
    started = time.monotonic()
    silent_block, seed, parts = f"127.94.{os.getpid() % 250}.0/29", 7, 4
    space = build_space([lab_block(lab), silent_block], default_ports(), seed=seed)
    slow = _slow_pairs(space, silent_block, parts)
    out, undisturbed = tmp_path / "dist.jsonl", tmp_path / "undisturbed.jsonl"
    with silent_services(slow):
        baseline = subprocess.Popen(
            [sys.executable, "-m", "leaksonar", "scan", silent_block, "--seed", str(seed), "--db",
             str(tmp_path / "undisturbed.db"), "--jsonl", str(undisturbed), "-q"],
        )  # fmt: skip
        workers.start(), workers.start()
        assert baseline.wait(timeout=60) == 0
        argv = [
            sys.executable, "-m", "leaksonar", "scan", lab_block(lab), silent_block, "--seed", str(seed),
            "--distributed", "--broker", cluster.broker, "--db", cluster.db, "--shards", str(parts),
            "--jsonl", str(out), "-q",
        ]  # fmt: skip
        submit = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client = redis.Redis.from_url(cluster.broker)
        victim, shard, killed = _kill_a_lease_holder(client, workers, lambda: submit.poll() is None)
        _, errors = submit.communicate(timeout=110)
    requeued = time.monotonic() - killed
    assert submit.returncode == 0, errors
    assert requeued < LEASE_TTL + 30, f"the scan ended {requeued:.0f} s after the kill"
    survivor = next(w for w in workers.procs if w is not victim)
    taken = re.findall(r"scan_shard\[([0-9a-f-]+)\] received", workers.log(victim))
    assert len(taken) == 1, "the victim died in its first shard"
    assert f"{taken[0]}] succeeded" not in workers.log(victim)
    assert f"the worker of shard {shard} is gone" in errors

    expected = scanned["records"] | _records(undisturbed)
    found = _records(out)
    assert _essentials(found) == _essentials(expected)
    assert len(found) == len(expected) > len(slow)
    store = Store(cluster.db)
    scan_id = next(iter(found.values()))["scan_id"]
    scan = _scan(store, scan_id)
    assert scan.status == "done" and scan.probes == scan.size == space.size
    assert scan.services == len(expected)
    assert client.scard(f"leaksonar:scan:{scan_id}:done") == parts

    def state() -> tuple[Any, ...]:
        with store.engine.connect() as conn:
            query = select(func.count()).select_from(findings).where(findings.c.scan_id == scan_id)
            rows = conn.execute(query).scalar()
        counters = _scan(store, scan_id)
        progress = client.hgetall(f"leaksonar:scan:{scan_id}:progress")
        return rows, counters, progress, client.smembers(f"leaksonar:scan:{scan_id}:done")

    before = state()
    unacked = {tag: json.loads(raw)[0] for tag, raw in client.hgetall("unacked").items()}
    assert [m["headers"]["id"] for m in unacked.values()] == taken, "only the killed shard is unacked"
    configure(cluster.broker)
    with app.connection_for_write() as connection:  # what the broker does once the timeout has passed
        connection.default_channel.qos.restore_by_tag(next(iter(unacked)))
    deadline = time.monotonic() + 30
    while f"{taken[0]}] succeeded" not in workers.log(survivor):
        assert time.monotonic() < deadline, workers.log(survivor)[-2000:]
        time.sleep(0.1)
    assert client.hlen("unacked") == 0 and state() == before
    assert time.monotonic() - started < 120


def _killed_beat_worker(cluster: Backends, workers: Workers, tmp_path: Path) -> None:
    """Run and check the scenario of `test_a_beat_pass_survives_a_killed_worker`: with the default
    settings, a worker of a `beat` pass killed mid-shard: the sweeps that `beat`
    queues hand its shard to the other worker, and the pass ends within a minute, every pair probed."""
    block, seed, parts = f"127.95.{os.getpid() % 250}.0/29", 5, 4
    space = build_space([block], default_ports(), seed=seed)
    argv = [sys.executable, "-m", "leaksonar", "beat", block, "--seed", str(seed), "--every", "1h"]
    argv += ["--broker", cluster.broker, "--shards", str(parts)]
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}  # the schedule's state file
    log, store = tmp_path / "beat.log", Store(cluster.db)
    with silent_services(_slow_pairs(space, block, parts)):
        workers.start(), workers.start()
        with log.open("wb") as out:
            beat = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            client = redis.Redis.from_url(cluster.broker)
            victim, shard, killed = _kill_a_lease_holder(client, workers, lambda: beat.poll() is None)
            while True:
                with store.engine.connect() as conn:
                    query = select(scans).where(scans.c.targets == describe(space, None)["targets"][0])
                    passes = conn.execute(query).all()
                if passes and passes[0].status == "done":
                    break
                assert time.monotonic() - killed < LEASE_TTL + 30, log.read_text()[-2000:]
                assert beat.poll() is None, log.read_text()[-2000:]
                time.sleep(0.2)
        finally:
            os.killpg(beat.pid, signal.SIGTERM)
            beat.wait(timeout=15)
    survivor = next(w for w in workers.procs if w is not victim)
    assert f"the worker of shard {shard} is gone" in workers.log(survivor)
    assert len(passes) == 1 and passes[0].probes == passes[0].size == space.size
    assert passes[0].services == parts  # each silent service once


def _beat_every_interval(cluster: Backends, workers: Workers, tmp_path: Path) -> None:
    """Run and check the scenario of `test_beat_queues_a_pass_on_every_interval`: `beat --every 2s` queues
    passes that a worker scans, and keeps its schedule's state file."""
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


@pytest.fixture(scope="module")
def waiting_scenarios(
    lab: dict[str, Any], scanned: dict[str, Any], cluster: Backends, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[None]]]:
    """The scenarios that spend most of their time waiting (for a killed worker's lease to lapse, for the
    next pass of a schedule), run at the same time, each in a cluster of its own: a Redis database of the
    module's Redis (0, 1, 2) and an index on its PostgreSQL. Each test waits for its own scenario's checks."""
    scenarios: dict[str, Callable[[Backends, Workers, Path], None]] = {
        "scan": partial(_killed_scan_worker, lab, scanned),
        "beat": _killed_beat_worker,
        "interval": _beat_every_interval,
    }
    clusters = [cluster] + [
        Backends(cluster.broker.removesuffix("/0") + f"/{n}", new_postgres_database(cluster.db))
        for n in range(1, len(scenarios))
    ]
    workers = [Workers(c, tmp_path_factory.mktemp(name)) for name, c in zip(scenarios, clusters, strict=True)]

    def play(run: Callable[[Backends, Workers, Path], None], cluster: Backends, workers: Workers) -> None:
        try:
            run(cluster, workers, workers.directory)
        finally:
            workers.stop()  # none is left to take the next tests' tasks

    with ThreadPoolExecutor(len(scenarios)) as pool:
        yield {
            name: pool.submit(play, run, c, w)
            for (name, run), c, w in zip(scenarios.items(), clusters, workers, strict=True)
        }


@pytest.mark.slow
@pytest.mark.timeout(300)  # the scenario bounds itself to 120 s; the session's lab may start in the setup
def test_a_killed_worker_costs_a_lease_not_an_hour(waiting_scenarios: dict[str, Future[None]]) -> None:
    waiting_scenarios["scan"].result()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_beat_pass_survives_a_killed_worker(waiting_scenarios: dict[str, Future[None]]) -> None:
    waiting_scenarios["beat"].result()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_beat_queues_a_pass_on_every_interval(waiting_scenarios: dict[str, Future[None]]) -> None:
    waiting_scenarios["interval"].result()


def test_a_shard_delivered_again_once_done_counts_nothing(
    lab: dict[str, Any], cluster: Backends, workers: Workers
) -> None:
    """A copy of a done shard's task, delivered while its scan is still running, is acknowledged
    without scanning or counting anything."""
    worker = workers.start()
    configure(cluster.broker)
    store, client = Store(cluster.db), redis.Redis.from_url(cluster.broker)
    space = build_space([lab_block(lab)], default_ports(), seed=3)
    queued = enqueue(store, space, None, asdict(ScanOptions()), 2)
    done, progress = f"leaksonar:scan:{queued.scan_id}:done", f"leaksonar:scan:{queued.scan_id}:progress"
    deadline = time.monotonic() + 60
    while client.scard(done) < 2:
        assert time.monotonic() < deadline, workers.log(worker)[-2000:]
        time.sleep(0.1)

    def state() -> tuple[Any, ...]:
        with store.engine.connect() as conn:
            query = select(func.count()).select_from(findings).where(findings.c.scan_id == queued.scan_id)
            return conn.execute(query).scalar(), client.hgetall(progress), client.smembers(done)

    before = state()
    assert before[0] > 0 and sum(int(v.split()[0]) for v in before[1].values()) == space.size
    queued.queue(1)
    deadline = time.monotonic() + 30
    while workers.log(worker).count("] succeeded") < 3:
        assert time.monotonic() < deadline, workers.log(worker)[-2000:]
        time.sleep(0.1)
    assert f"scan {queued.scan_id}: shard 1 is already done" in workers.log(worker)
    assert state() == before and client.hlen("unacked") == 0
    assert not client.exists(f"leaksonar:scan:{queued.scan_id}:leased")


def test_a_lease_lapses_without_its_heartbeat_and_is_handed_out_once(cluster: Backends) -> None:
    client, scan_id = redis.Redis.from_url(cluster.broker), f"test-{time.time_ns()}"
    settings = LeaseSettings(ttl=1, heartbeat=0.2)
    held, dead = Lease(client, scan_id, 0, settings), Lease(client, scan_id, 1, settings)
    assert held.acquire() and dead.acquire()
    assert not Lease(client, scan_id, 0, settings).acquire()
    dead.stopped.set()  # its worker dies: no more heartbeats
    time.sleep(1.5)
    assert lapsed(client, scan_id) == [1]  # the live lease was renewed; the dead one lapsed
    assert lapsed(client, scan_id) == []  # handed out once
    with held:
        pass
    assert lapsed(client, scan_id) == [] and not client.exists(f"leaksonar:scan:{scan_id}:lease:0")
    result = subprocess.run(
        [sys.executable, "-m", "leaksonar", "worker", "--broker", cluster.broker, "--heartbeat", "30"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "leaksonar: error: the heartbeat (30 s) must be positive and shorter than the lease (30 s)\n"
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
