"""Bounded HTTP GET (httpx): every body is capped in bytes and every request has a timeout."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from leaksonar.model import Limits
from leaksonar.protocols.base import ReplyTooLarge
from leaksonar.protocols.useragent import USER_AGENT


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def get_bounded(url: str, limits: Limits, client: httpx.AsyncClient | None = None) -> Response:
    """GET `url`; raise ReplyTooLarge past `limits.max_bytes`, TimeoutError past the budget."""

    async def fetch(c: httpx.AsyncClient) -> Response:
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        async with c.stream("GET", url, headers=headers) as response:
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > limits.max_bytes:
                    raise ReplyTooLarge(f"body over {limits.max_bytes} bytes")
            return Response(response.status_code, response.headers, bytes(body))

    if client is not None:
        return await asyncio.wait_for(fetch(client), limits.timeout)
    async with httpx.AsyncClient(timeout=limits.timeout, trust_env=False, follow_redirects=False) as c:
        return await asyncio.wait_for(fetch(c), limits.timeout)
