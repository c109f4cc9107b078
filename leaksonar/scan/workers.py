"""Scanning on every core: forked worker processes each walk one shard of the target space and examine
the open ports they find.

A worker runs its own `Discovery` and reports over a pipe, one line each, the open ports it finds
(`O ip port position`, as it finds them) and its counters and low-water position (`S probes open closed
filtered unreachable connects low_water`, see `Discovery.low_water`); it identifies and inspects each open
port itself (`Examiner`, up to its share of the scan's inspection concurrency) and sends the finding
(`F position size`, then the pickled `Finding`). The parent stores findings and writes output, so the
index and the terminal stay in one process; a port reported open and not yet stored stays pending in the
parent's checkpoints; a worker stops as soon as its pipe to the parent closes (the parent killed, or
stopped alone by SIGTERM). Workers are forked before the parent's event loop starts (a new scan's: before
it even opens the index).
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import uvloop

from leaksonar.model import Finding
from leaksonar.scan.discover import Discovery, DiscoveryStats, OpenHandler
from leaksonar.scan.examine import Examination
from leaksonar.targets import TargetSpace

_COUNTERS = [f.name for f in fields(DiscoveryStats) if f.name != "started"]
_REPORT_EVERY = 0.2


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    concurrency: int
    per_host: int
    rate: float | None
    timeout: float
    retries: int

    def share(self, shards: int) -> DiscoverySettings:
        """One worker's part of the global limits."""
        return DiscoverySettings(
            concurrency=max(1, self.concurrency // shards),
            per_host=max(1, self.per_host // shards),
            rate=self.rate / shards if self.rate else None,
            timeout=self.timeout,
            retries=self.retries,
        )

    def discovery(
        self,
        space: TargetSpace,
        shard: int,
        shards: int,
        on_open: OpenHandler,
        on_progress: Callable[[DiscoveryStats], None],
        start: int = 0,
    ) -> Discovery:
        return Discovery(
            space.walk(shard, shards, start),
            on_open,
            concurrency=self.concurrency,
            per_host=self.per_host,
            rate=self.rate,
            timeout=self.timeout,
            retries=self.retries,
            on_progress=on_progress,
        )


class WorkerInterrupted(Exception):
    """Ctrl-C reached a worker (before or instead of this process): the scan is interrupted."""


@dataclass(slots=True)
class Worker:
    pid: int
    fd: int
    stats: DiscoveryStats
    low_water: int
    """Position below which the worker's shard is done (its open ports already reported)."""


def _counters(stats: DiscoveryStats) -> str:
    return " ".join(str(getattr(stats, name)) for name in _COUNTERS)


class _PipeOut(asyncio.Protocol):
    """The writing end of the pipe to the parent, with flow control: `drain` waits while the parent lags,
    and raises BrokenPipeError once the parent is gone; `closed` is done when all is written."""

    def __init__(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def pause_writing(self) -> None:
        self._flowing.clear()

    def resume_writing(self) -> None:
        self._flowing.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._flowing.set()
        self.closed.set_result(None)

    async def drain(self) -> None:
        await self._flowing.wait()
        if self.closed.done():
            raise BrokenPipeError("the scan's main process is gone")


async def _work(
    space: TargetSpace,
    shard: int,
    shards: int,
    settings: DiscoverySettings,
    examination: Examination,
    fd: int,
    start: int,
) -> None:
    """Walk shard `shard`, examine its open ports and report both to the parent over pipe `fd`."""
    loop = asyncio.get_running_loop()
    pipe, out = await loop.connect_write_pipe(_PipeOut, os.fdopen(fd, "wb", buffering=0))
    examiner = examination.open(space.names)
    slots = asyncio.Semaphore(examination.concurrency)
    examining: set[asyncio.Task[None]] = set()
    reported = 0.0

    async def examine(ip: str, port: int, sock: socket.socket, position: int) -> None:
        try:
            finding = pickle.dumps(await examiner.examine(ip, port, sock), pickle.HIGHEST_PROTOCOL)
            pipe.write(b"F %d %d\n%s" % (position, len(finding), finding))
            await out.drain()
        finally:
            slots.release()

    async def on_open(ip: str, port: int, sock: socket.socket, position: int) -> None:
        pipe.write(f"O {ip} {port} {position}\n".encode())
        await slots.acquire()
        task = asyncio.create_task(examine(ip, port, sock, position))
        examining.add(task)
        task.add_done_callback(examining.discard)

    def report(stats: DiscoveryStats) -> None:
        pipe.write(f"S {_counters(stats)} {discovery.low_water()}\n".encode())

    def on_progress(stats: DiscoveryStats) -> None:
        nonlocal reported
        if time.monotonic() - reported >= _REPORT_EVERY:
            reported = time.monotonic()
            report(stats)

    async def walk_and_examine() -> DiscoveryStats:
        stats = await discovery.run()
        while examining:
            await asyncio.gather(*examining)
        return stats

    discovery = settings.discovery(space, shard, shards, on_open, on_progress, start)
    work = asyncio.ensure_future(walk_and_examine())
    try:  # the parent gone (killed, or stopped alone by SIGTERM): stop now, not at the next report
        await asyncio.wait([work, out.closed], return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
            raise BrokenPipeError("the scan's main process is gone")
        stats = work.result()
    finally:
        examiner.close()
    report(stats)
    pipe.close()
    await out.closed


def fork_workers(
    space: TargetSpace,
    shards: int,
    settings: DiscoverySettings,
    examination: Examination,
    starts: Sequence[int] = (),
) -> list[Worker]:
    """Start one worker per shard. Call before any event loop.

    `settings` and `examination` are the scan's global limits; each worker takes its share. Shard k starts
    at position `starts[k]` (default 0).
    """
    starts = list(starts) or [0] * shards
    share = settings.share(shards)
    examining = replace(examination, concurrency=max(1, examination.concurrency // shards))
    workers = []
    for shard in range(shards):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_fd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            try:
                uvloop.run(_work(space, shard, shards, share, examining, write_fd, starts[shard]))
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        workers.append(Worker(pid, read_fd, DiscoveryStats(), starts[shard]))
    return workers


def stop_workers(workers: Sequence[Worker]) -> None:
    """End the workers of a scan that is not to run after all (its index failed to open)."""
    for worker in workers:
        os.kill(worker.pid, signal.SIGKILL)
        os.waitpid(worker.pid, 0)
        os.close(worker.fd)


async def follow(
    worker: Worker,
    on_open: Callable[[str, int, int], None],
    on_finding: Callable[[Finding, int], None],
    on_report: Callable[[], None],
) -> None:
    """Read a worker's reports until it finishes; hand each open port and its position to `on_open`, each
    finding and its port's position to `on_finding`, and call `on_report` after each report of its counters.
    Raises WorkerInterrupted when Ctrl-C ended the worker, RuntimeError when anything else did."""
    reader = asyncio.StreamReader(limit=1 << 16)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(worker.fd, "rb", buffering=0)
    )
    try:
        while (line := await reader.readline()).endswith(b"\n"):  # a cut one: it died while writing
            kind, *values = line.decode().split()
            if kind == "O":
                on_open(values[0], int(values[1]), int(values[2]))
            elif kind == "F":  # pickled by the worker this process forked
                position, size = map(int, values)
                try:
                    finding = await reader.readexactly(size)
                except asyncio.IncompleteReadError:  # it died while sending: its exit status says why
                    break
                on_finding(pickle.loads(finding), position)
            elif kind == "S":
                *counters, worker.low_water = map(int, values)
                for name, value in zip(_COUNTERS, counters, strict=True):
                    setattr(worker.stats, name, value)
                on_report()
    finally:
        transport.close()
        _, status = await asyncio.to_thread(os.waitpid, worker.pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT:
        raise WorkerInterrupted(f"discovery worker {worker.pid} was interrupted")
    if status:  # its shard is not done: the scan must not count as finished (it stays resumable)
        raise RuntimeError(f"discovery worker {worker.pid} ended with status {status}")


def combined(own: DiscoveryStats, workers: list[Worker]) -> DiscoveryStats:
    """The whole scan's counters: this process's own plus every worker's last report."""
    total = DiscoveryStats(started=own.started)
    for stats in (own, *(w.stats for w in workers)):
        for name in _COUNTERS:
            setattr(total, name, getattr(total, name) + getattr(stats, name))
    return total
