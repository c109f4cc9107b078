"""Rate limiting per API key (per client address without a key): a token bucket in front of the app."""

from __future__ import annotations

import json
import math
import re
import time
from collections import OrderedDict

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from leaksonar.web.access import presented_key
from leaksonar.web.keys import digest

PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
RATE = re.compile(r"\s*(\d+)\s*/\s*(second|minute|hour)\s*")
MAX_CLIENTS = 10_000
"""Buckets kept; the least recently seen client is forgotten beyond this (it starts full again)."""


def parse_rate(text: str) -> tuple[int, float]:
    """Parse "600/minute" into (600 requests, 60.0 seconds)."""
    match = RATE.fullmatch(text)
    if not match or int(match[1]) < 1:
        raise ValueError(f"rate limit {text!r}: use N/second, N/minute or N/hour with N >= 1")
    return int(match[1]), PERIODS[match[2]]


class TokenBucket:
    """`burst` requests at once, refilled at burst/period per second, for each client."""

    def __init__(self, burst: int, period: float) -> None:
        self.burst = burst
        self.refill = burst / period
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float) -> float:
        """Take one token; returns 0.0 when allowed, else the seconds until a token is available."""
        tokens, then = self.buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.refill)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.refill
        self.buckets[client] = (tokens - 1.0 if wait == 0.0 else tokens, now)
        if len(self.buckets) > MAX_CLIENTS:
            self.buckets.popitem(last=False)
        return wait


class RateLimit:
    """ASGI middleware: 429 with Retry-After and a JSON error once a client's bucket is empty.
    Static files are not counted."""

    def __init__(self, app: ASGIApp, bucket: TokenBucket) -> None:
        self.app = app
        self.bucket = bucket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        key = presented_key(request)
        client = f"key:{digest(key)}" if key else f"addr:{request.client.host if request.client else ''}"
        wait = self.bucket.take(client, time.monotonic())
        if wait == 0.0:
            await self.app(scope, receive, send)
            return
        retry = max(1, math.ceil(wait))
        body = json.dumps({"error": f"rate limit exceeded; retry in {retry} s"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
