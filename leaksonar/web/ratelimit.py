"""Rate limiting in front of the app: a token bucket per valid API key (a session counts as its key), else
per client address. An unknown key or session is counted by its address, so rotating made-up keys gains
nothing; and no flood of addresses can make the limiter forget a client that has not fully refilled."""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections import OrderedDict

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from leaksonar.store.db import Store
from leaksonar.web.access import Credential, credential, holder
from leaksonar.web.guard import send_error
from leaksonar.web.keys import digest

PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
RATE = re.compile(r"\s*(\d+)\s*/\s*(second|minute|hour)\s*")
MAX_CLIENTS = 10_000
"""Buckets kept per table (valid keys; addresses); beyond, newcomers share one overflow bucket."""
CHECK_SECONDS = 30.0
"""How long the limiter trusts its look-up of a key or session (a revoked key may keep its own bucket
this long; the app itself checks every request)."""
IPV6_NETWORK = 64
"""IPv6 clients are counted by their /64: one host usually holds a whole /64."""


def parse_rate(text: str) -> tuple[int, float]:
    """Parse "600/minute" into (600 requests, 60.0 seconds)."""
    match = RATE.fullmatch(text)
    if not match or int(match[1]) < 1:
        raise ValueError(f"rate limit {text!r}: use N/second, N/minute or N/hour with N >= 1")
    return int(match[1]), PERIODS[match[2]]


class TokenBucket:
    """`burst` requests at once, refilled at burst/period per second, for each of at most `size` clients.

    A bucket is forgotten only once it has refilled completely (it is then the same as a fresh one), so
    no flood of newcomers can reset a client's depleted bucket. When every bucket kept is still refilling,
    newcomers share one overflow bucket until one has refilled."""

    def __init__(self, burst: int, period: float, size: int) -> None:
        self.burst = burst
        self.refill = burst / period
        self.size = size
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (tokens, when), oldest first
        self.overflow = (float(burst), 0.0)

    def take(self, client: str, now: float) -> float:
        """Take one token; returns 0.0 when allowed, else the seconds until a token is available."""
        if client not in self.buckets and len(self.buckets) >= self.size:
            _oldest, (tokens, then) = next(iter(self.buckets.items()))
            # the least recently used bucket still refills: every bucket kept was used within one period
            if self._level(tokens, then, now) < self.burst:
                self.overflow, wait = self._take(self.overflow, now)
                return wait
            self.buckets.popitem(last=False)
        self.buckets[client], wait = self._take(self.buckets.pop(client, (float(self.burst), now)), now)
        return wait

    def _level(self, tokens: float, then: float, now: float) -> float:
        return min(float(self.burst), tokens + (now - then) * self.refill)

    def _take(self, bucket: tuple[float, float], now: float) -> tuple[tuple[float, float], float]:
        tokens = self._level(*bucket, now)
        if tokens >= 1.0:
            return (tokens - 1.0, now), 0.0
        return (tokens, now), (1.0 - tokens) / self.refill


class KeyHolders:
    """The name of the valid key behind a credential, looked up in the store at most once per
    CHECK_SECONDS for each of the MAX_CLIENTS credentials seen last."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.checked: OrderedDict[str, tuple[str | None, float]] = OrderedDict()

    async def name(self, presented: Credential, now: float) -> str | None:
        kind, secret = presented
        seen = f"{kind}:{digest(secret)}"
        name, when = self.checked.pop(seen, (None, -math.inf))
        if now - when >= CHECK_SECONDS:
            found = await run_in_threadpool(holder, self.store, presented)
            name, when = (found.name if found else None), now
        self.checked[seen] = (name, when)
        if len(self.checked) > MAX_CLIENTS:
            self.checked.popitem(last=False)
        return name


def address(request: Request) -> str:
    """The client's address as the limiter counts it (IPv6: its /64)."""
    host = request.client.host if request.client else ""
    try:
        found = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(found, ipaddress.IPv6Address):
        if found.ipv4_mapped:
            return str(found.ipv4_mapped)
        return str(ipaddress.IPv6Network((found, IPV6_NETWORK), strict=False))
    return str(found)


class RateLimit:
    """ASGI middleware: 429 with Retry-After and a JSON error once a client's bucket is empty.
    Static files are not counted."""

    def __init__(self, app: ASGIApp, store: Store, burst: int, period: float) -> None:
        self.app = app
        self.holders = KeyHolders(store)
        self.keys = TokenBucket(burst, period, MAX_CLIENTS)
        self.addresses = TokenBucket(burst, period, MAX_CLIENTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        now = time.monotonic()
        presented = credential(request)
        name = await self.holders.name(presented, now) if presented else None
        table, client = (self.keys, name) if name is not None else (self.addresses, address(request))
        wait = table.take(client, now)
        if wait == 0.0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        await send_error(
            send, 429, f"rate limit exceeded; retry in {retry} s", [(b"retry-after", str(retry).encode())]
        )
