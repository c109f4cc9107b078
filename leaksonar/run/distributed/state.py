"""A distributed scan's shared state in the broker's Redis: each shard's counters, the shards done, the
errors workers hit, and the leases workers hold on the shards they run.

A worker takes a shard's lease (`leaksonar:scan:ID:lease:SHARD`, which lapses unless its heartbeat
renews it) and adds the shard to the scan's `leased` set; the shard leaves that set when it is done or
its lease is released. A shard still in the set whose lease has lapsed was held by a worker that died:
`lapsed` hands it, once, to whoever sweeps (the submitter, or for the passes of `leaksonar beat`, kept
in `leaksonar:passes`, the sweeps `beat` queues), who queues it again. Counters are written only by
the lease's holder and only until the shard is done, and the first run to finish a shard writes its
final counters: a late or second run counts nothing twice.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass
from types import TracebackType

import redis

from leaksonar.run.distributed.options import LeaseSettings
from leaksonar.scan.discover import DiscoveryStats
from leaksonar.scan.engine import ScanProgress

_TTL = 7 * 24 * 3600
"""Seconds a finished scan's state stays in Redis."""

_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SADD', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  return 1
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
"""
_REPORT = """
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
end
"""
_DONE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
redis.call('SREM', KEYS[3], ARGV[1])
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
"""
_LAPSED = """
-- the lease keys are named from ARGV[1]: one Redis, not a cluster
local lapsed = {}
for _, shard in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. shard) == 0 then
    redis.call('SREM', KEYS[1], shard)
    if redis.call('SISMEMBER', KEYS[2], shard) == 0 then table.insert(lapsed, shard) end
  end
end
return lapsed
"""


def key(scan_id: str, what: str) -> str:
    return f"leaksonar:scan:{scan_id}:{what}"


def _counts(progress: ScanProgress) -> str:
    stats = progress.discovery
    return f"{stats.probes} {stats.open} {progress.services} {progress.exposed}"


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


def lapsed(client: redis.Redis, scan_id: str) -> list[int]:
    """The shards not done whose worker died (their lease lapsed), each handed out once: the caller
    queues them again."""
    sweep = client.register_script(_LAPSED)
    found = sweep(keys=[key(scan_id, "leased"), key(scan_id, "done")], args=[key(scan_id, "lease:")])
    return sorted(int(shard) for shard in found)


_PASSES = "leaksonar:passes"
"""The passes of `leaksonar beat` not yet finished: scan id -> the pass as queued (JSON)."""
_FINISHING = 600
"""Seconds a sweep has to finish a pass before another may."""


def add_pass(client: redis.Redis, scan_id: str, described: str) -> None:
    client.hset(_PASSES, scan_id, described)


def passes(client: redis.Redis) -> list[str]:
    return [described.decode() for described in client.hvals(_PASSES)]


def claim_finish(client: redis.Redis, scan_id: str) -> bool:
    """True for the one sweep that finishes the pass (another may after _FINISHING seconds)."""
    return bool(client.set(key(scan_id, "finishing"), 1, nx=True, ex=_FINISHING))


def forget_pass(client: redis.Redis, scan_id: str) -> None:
    client.hdel(_PASSES, scan_id)


class Lease:
    """A worker's hold on a shard it runs, renewed by a heartbeat thread. While it is held, another copy
    of the shard's task waits instead of scanning the shard a second time; once its worker is dead it
    lapses after `settings.ttl` seconds and the shard is queued again (`lapsed`)."""

    def __init__(self, client: redis.Redis, scan_id: str, shard: int, settings: LeaseSettings) -> None:
        self.scan_id, self.shard, self.settings = scan_id, shard, settings
        self.name = key(scan_id, f"lease:{shard}")
        self.token = f"{socket.gethostname()} {os.getpid()} {uuid.uuid4().hex}"  # who holds it
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._heartbeat, daemon=True)
        self.scripts = {
            name: client.register_script(text)
            for name, text in (
                ("acquire", _ACQUIRE),
                ("renew", _RENEW),
                ("report", _REPORT),
                ("done", _DONE),
                ("release", _RELEASE),
            )
        }

    @property
    def _ttl_ms(self) -> int:
        return int(self.settings.ttl * 1000)

    def acquire(self) -> bool:
        """Take the lease and start its heartbeat; False if another worker holds it."""
        taken = self.scripts["acquire"](
            keys=[self.name, key(self.scan_id, "leased")], args=[self.token, self._ttl_ms, self.shard, _TTL]
        )
        if taken:
            self.thread.start()
        return bool(taken)

    def _heartbeat(self) -> None:
        while not self.stopped.wait(self.settings.heartbeat):
            try:
                if not self.scripts["renew"](keys=[self.name], args=[self.token, self._ttl_ms]):
                    return  # lapsed (this process was stalled): the shard has been queued again
            except redis.RedisError:
                continue  # the broker is unreachable for now: try again at the next beat

    def report(self, progress: ScanProgress) -> None:
        """Record the shard's latest counters, while this lease is held and the shard not done."""
        self.scripts["report"](
            keys=[self.name, key(self.scan_id, "done"), key(self.scan_id, "progress")],
            args=[self.token, self.shard, _counts(progress)],
        )

    def done(self, progress: ScanProgress) -> None:
        """Mark the shard done; the first run to finish it writes its final counters."""
        what = ("done", "progress", "leased", "errors")
        self.scripts["done"](
            keys=[key(self.scan_id, w) for w in what], args=[self.shard, _counts(progress), _TTL]
        )

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()
        self.scripts["release"](keys=[self.name, key(self.scan_id, "leased")], args=[self.token, self.shard])
