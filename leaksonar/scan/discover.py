"""TCP connect discovery: non-blocking connects driven from one coroutine, no task per probe.

The answer of a nearby host is usually there as soon as connect() returns, and a second connect()
reports it (0: open, ECONNREFUSED: closed, EALREADY: no answer yet); a refusal also leaves the socket
unconnected, so the next (IPv4) probe reuses it, saving the socket() and close() calls (a third of the cost).
The fast path, a closed port, thus costs two system calls and no allocation. Slower answers are watched
with the event loop's writer callbacks. In-flight probes are bounded by `concurrency`, per host by
`per_host`, and starts by a global token bucket.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

OpenHandler = Callable[[str, int, socket.socket, int], Awaitable[None]]
"""Called with every open port, its connected socket (owned by the handler from then on) and position."""

_RETRYABLE = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.EAGAIN, errno.EADDRNOTAVAIL}
_YIELD_EVERY = 256
_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
_REFUSED, _IN_PROGRESS, _ALREADY = errno.ECONNREFUSED, errno.EINPROGRESS, errno.EALREADY


@dataclass(slots=True)
class DiscoveryStats:
    probes: int = 0
    """Target/port pairs finished (open, closed, filtered or unreachable)."""
    open: int = 0
    closed: int = 0
    filtered: int = 0
    """No answer within the timeout, after every retry."""
    unreachable: int = 0
    connects: int = 0
    """Connection attempts started, retries included."""
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        return self.probes / max(time.monotonic() - self.started, 1e-9)


class TokenBucket:
    """Global rate limit: at most `rate` starts per second, bursts of 1% of a second."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.capacity = max(1.0, (rate or 0) / 100)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def delay(self) -> float:
        """0 and a token taken, or the seconds to wait before one is available."""
        if self.rate is None:
            return 0.0
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass(slots=True)
class _Probe:
    ip: str
    port: int
    position: int
    attempt: int = 0
    sock: socket.socket | None = None
    deadline: float = 0.0


class Discovery:
    """One pass over a stream of (ip, port, position) targets; positions rise along the stream."""

    def __init__(
        self,
        targets: Iterator[tuple[str, int, int]],
        on_open: OpenHandler,
        *,
        concurrency: int = 1000,
        per_host: int = 16,
        rate: float | None = None,
        timeout: float = 1.5,
        retries: int = 1,
        on_progress: Callable[[DiscoveryStats], None] | None = None,
    ) -> None:
        self.targets = targets
        self.on_open = on_open
        self.concurrency, self.per_host, self.timeout, self.retries = concurrency, per_host, timeout, retries
        self.bucket = TokenBucket(rate)
        self.on_progress = on_progress
        self.stats = DiscoveryStats()
        self._inflight: dict[int, _Probe] = {}  # fd -> probe, in deadline order (constant timeout)
        self._per_host: dict[str, int] = {}
        self._held: defaultdict[str, deque[_Probe]] = defaultdict(deque)  # waiting on per-host limit
        self._held_count = 0
        self._runnable: deque[_Probe] = deque()  # retries and released held probes go first
        self._answered: deque[int] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._exhausted = False
        self._pulled = 0  # one past the position of the last target taken
        self._spare: socket.socket | None = None  # refused, so unconnected again: the next probe's socket

    async def run(self) -> DiscoveryStats:
        loop = asyncio.get_running_loop()
        try:
            while True:
                pause = await self._launch(loop)
                await self._collect()
                self._expire(loop)
                if self._exhausted and not (self._inflight or self._runnable or self._held_count):
                    return self.stats
                if self.on_progress:
                    self.on_progress(self.stats)
                await self._wait(loop, pause)
        finally:
            if self._spare is not None:
                self._spare.close()
            for probe in self._inflight.values():
                loop.remove_writer(probe.sock.fileno())  # type: ignore[union-attr]
                probe.sock.close()  # type: ignore[union-attr]

    async def _launch(self, loop: asyncio.AbstractEventLoop) -> float:
        """Start probes up to the limits; return how long to wait for the rate limit (0: none).

        Outcomes known at once (above all refusals) are settled inline; only a probe that has to wait
        gets a record.
        """
        stats, per_host, runnable, inflight = self.stats, self._per_host, self._runnable, self._inflight
        bucket = self.bucket if self.bucket.rate is not None else None
        started = 0
        while len(inflight) < self.concurrency:
            if bucket is not None and (delay := bucket.delay()) > 0:
                return delay
            probe: _Probe | None = None
            if runnable:
                probe = runnable.popleft()
                ip, port, position = probe.ip, probe.port, probe.position
            elif self._exhausted or self._held_count >= self.concurrency:
                return 0.0
            else:
                try:
                    ip, port, position = next(self.targets)
                except StopIteration:
                    self._exhausted = True
                    return 0.0
                self._pulled = position + 1
            if per_host.get(ip, 0) >= self.per_host:
                self._held[ip].append(probe or _Probe(ip, port, position))
                self._held_count += 1
                continue
            if ":" in ip:  # IPv6: a socket of its own family, never the (IPv4) spare
                sock = socket.socket(socket.AF_INET6, _STREAM)
            else:
                sock, self._spare = self._spare or socket.socket(socket.AF_INET, _STREAM), None
            stats.connects += 1
            code = sock.connect_ex((ip, port))
            if code == _IN_PROGRESS:
                code = sock.connect_ex((ip, port))  # the outcome, if the answer is already there
            if code == _REFUSED:
                if sock.family == socket.AF_INET:
                    self._spare = sock
                else:
                    sock.close()
                stats.probes += 1
                stats.closed += 1
            elif code == _ALREADY:
                self._watch(loop, probe or _Probe(ip, port, position), sock)
            else:
                await self._settle(probe or _Probe(ip, port, position), sock, code)
            started += 1
            if started % _YIELD_EVERY == 0:  # a run of refusals may never leave this loop: report from here
                if self.on_progress:
                    self.on_progress(self.stats)
                await asyncio.sleep(0)  # let inspections, checkpoints and callbacks run
        return 0.0

    def _watch(self, loop: asyncio.AbstractEventLoop, probe: _Probe, sock: socket.socket) -> None:
        """Wait for the handshake's outcome through the event loop."""
        probe.sock, probe.deadline = sock, time.monotonic() + self.timeout
        self._inflight[sock.fileno()] = probe
        self._per_host[probe.ip] = self._per_host.get(probe.ip, 0) + 1
        loop.add_writer(sock.fileno(), self._answered_cb, sock.fileno())

    def _answered_cb(self, fd: int) -> None:
        asyncio.get_running_loop().remove_writer(fd)
        self._answered.append(fd)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _collect(self) -> None:
        while self._answered:
            probe = self._inflight.pop(self._answered.popleft(), None)
            if probe is None or probe.sock is None:
                continue
            self._release(probe.ip)
            await self._settle(probe, probe.sock, probe.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))

    async def _settle(self, probe: _Probe, sock: socket.socket, code: int) -> None:
        if code == 0:
            self.stats.probes += 1
            self.stats.open += 1
            await self.on_open(probe.ip, probe.port, sock, probe.position)
            return
        sock.close()
        if code == errno.ECONNREFUSED:
            self.stats.probes += 1
            self.stats.closed += 1
        elif code in _RETRYABLE:
            self._runnable.append(probe)  # local resource shortage: try the same probe again
        elif code == errno.ETIMEDOUT:
            self._retry_or_filtered(probe)
        else:
            self.stats.probes += 1
            self.stats.unreachable += 1

    def _retry_or_filtered(self, probe: _Probe) -> None:
        if probe.attempt < self.retries:
            self._runnable.append(_Probe(probe.ip, probe.port, probe.position, probe.attempt + 1))
        else:
            self.stats.probes += 1
            self.stats.filtered += 1

    def low_water(self) -> int:
        """The position below which every target taken is finished (open ones handed to `on_open`)."""
        waiting = itertools.chain(self._inflight.values(), self._runnable, *self._held.values())
        return min((probe.position for probe in waiting), default=self._pulled)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        while self._inflight:
            fd, probe = next(iter(self._inflight.items()))
            if probe.deadline > now:
                return
            del self._inflight[fd]
            loop.remove_writer(fd)
            probe.sock.close()  # type: ignore[union-attr]
            self._release(probe.ip)
            self._retry_or_filtered(probe)

    def _release(self, ip: str) -> None:
        if self._per_host[ip] == 1:
            del self._per_host[ip]
        else:
            self._per_host[ip] -= 1
        held = self._held.get(ip)
        if held:
            self._runnable.append(held.popleft())
            self._held_count -= 1
            if not held:
                del self._held[ip]

    async def _wait(self, loop: asyncio.AbstractEventLoop, pause: float) -> None:
        """Sleep until an answer, the next deadline, or the rate limit allows a start."""
        if self._answered or self._runnable:
            await asyncio.sleep(0)
            return
        can_start = (
            len(self._inflight) < self.concurrency
            and not self._exhausted
            and self._held_count < self.concurrency
        )
        if can_start and pause == 0:
            await asyncio.sleep(0)
            return
        candidates = [pause] if pause > 0 else []
        if self._inflight:
            candidates.append(max(0.0, next(iter(self._inflight.values())).deadline - time.monotonic()))
        if not candidates:
            await asyncio.sleep(0)
            return
        self._waiter = loop.create_future()
        handle = loop.call_later(min(candidates), self._wake)
        try:
            await self._waiter
        finally:
            handle.cancel()
            self._waiter = None
