"""A distributed scan's shared state in the broker's Redis: each shard's counters, the shards done, the
errors workers hit, and the lease a worker holds on the shard it runs."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from types import TracebackType

import redis

from leaksonar.scan.discover import DiscoveryStats
from leaksonar.scan.engine import ScanProgress

_TTL = 7 * 24 * 3600
"""Seconds a finished scan's state stays in Redis."""


def key(scan_id: str, what: str) -> str:
    return f"leaksonar:scan:{scan_id}:{what}"


def report(client: redis.Redis, scan_id: str, shard: int, progress: ScanProgress) -> None:
    """Record a shard's latest counters (a shard run again replaces them: nothing is counted twice)."""
    stats = progress.discovery
    counts = f"{stats.probes} {stats.open} {progress.services} {progress.exposed}"
    client.hset(key(scan_id, "progress"), str(shard), counts)


def shard_done(client: redis.Redis, scan_id: str, shard: int, progress: ScanProgress) -> None:
    report(client, scan_id, shard, progress)
    with client.pipeline() as pipe:
        pipe.sadd(key(scan_id, "done"), shard)
        for what in ("progress", "done", "errors"):
            pipe.expire(key(scan_id, what), _TTL)
        pipe.execute()


def add_error(client: redis.Redis, scan_id: str, message: str) -> None:
    client.rpush(key(scan_id, "errors"), message)
    client.expire(key(scan_id, "errors"), _TTL)


@dataclass(frozen=True, slots=True)
class Status:
    progress: ScanProgress
    done: int
    errors: list[str]


def status(client: redis.Redis, scan_id: str, started: float) -> Status:
    """The whole scan: counters summed over its shards, shards done, errors."""
    with client.pipeline() as pipe:
        pipe.hvals(key(scan_id, "progress"))
        pipe.scard(key(scan_id, "done"))
        pipe.lrange(key(scan_id, "errors"), 0, -1)
        values, done, errors = pipe.execute()
    totals = [0, 0, 0, 0]
    for value in values:
        for i, count in enumerate(value.split()):
            totals[i] += int(count)
    probes, open_ports, services, exposed = totals
    stats = DiscoveryStats(probes=probes, open=open_ports, started=started)
    return Status(ScanProgress(stats, services, exposed), int(done), [e.decode() for e in errors])


def is_done(client: redis.Redis, scan_id: str, shard: int) -> bool:
    return bool(client.sismember(key(scan_id, "done"), shard))


class Lease:
    """Held while a worker runs a shard and renewed by a thread: a copy of the shard's task delivered
    again (the broker's visibility timeout passed) waits instead of scanning the shard a second time;
    a dead worker's lease lapses after `ttl` seconds."""

    def __init__(self, client: redis.Redis, scan_id: str, shard: int, ttl: float) -> None:
        self.client, self.name, self.ttl = client, key(scan_id, f"lease:{shard}"), ttl
        self.token = uuid.uuid4().hex
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._renew, daemon=True)

    def acquire(self) -> bool:
        if not self.client.set(self.name, self.token, nx=True, px=int(self.ttl * 1000)):
            return False
        self.thread.start()
        return True

    def _renew(self) -> None:
        while not self.stopped.wait(self.ttl / 3):
            self.client.set(self.name, self.token, xx=True, px=int(self.ttl * 1000))

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()
            if self.client.get(self.name) == self.token.encode():
                self.client.delete(self.name)
