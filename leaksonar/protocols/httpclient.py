"""Bounded HTTP (httpx): every body is capped in bytes and every exchange has a timeout."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from leaksonar.model import Limits
from leaksonar.protocols.base import ReplyTooLarge
from leaksonar.protocols.useragent import USER_AGENT

HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
"""Sent with every request: leaksonar names itself, and bodies come uncompressed (no gzip bombs)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON or nested too deeply to decode."""
        try:
            return json.loads(self.body)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def bounded_client(limits: Limits) -> httpx.AsyncClient:
    """One keep-alive client for a whole inspection; each exchange's `limits.timeout` is enforced
    around it by `request_bounded`, httpx's own timeout is only a backstop."""
    return httpx.AsyncClient(timeout=limits.timeout + 1, trust_env=False, follow_redirects=False)


async def request_bounded(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    limits: Limits,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    payload: Any = None,
) -> Response:
    """One request; raise ReplyTooLarge past `limits.max_bytes`, TimeoutError past `limits.timeout`.

    Callers send only reads: GET, or a POST that an API defines as a read (documented where used).
    """

    async def fetch() -> Response:
        async with client.stream(
            method, url, params=params, headers={**HEADERS, **(headers or {})}, json=payload
        ) as response:
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > limits.max_bytes:
                    raise ReplyTooLarge(f"body over {limits.max_bytes} bytes")
            return Response(response.status_code, response.headers, bytes(body))

    return await asyncio.wait_for(fetch(), limits.timeout)


async def get_bounded(url: str, limits: Limits, client: httpx.AsyncClient | None = None) -> Response:
    """GET `url` (with a client of its own unless one is given)."""
    if client is not None:
        return await request_bounded(client, "GET", url, limits)
    async with bounded_client(limits) as own:
        return await request_bounded(own, "GET", url, limits)
