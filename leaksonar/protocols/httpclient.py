"""Bounded HTTP (httpx): every body is capped in bytes and every exchange has a timeout; and the helpers
the HTTP protocol modules share (raw replies for `match`, JSON answers for `inspect`)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx

from leaksonar.model import Limits, Software
from leaksonar.protocols.base import CommandRefused, Endpoint, ProtocolError, ReplyTooLarge, timed
from leaksonar.protocols.tls import client_context
from leaksonar.protocols.useragent import USER_AGENT

_STATUS = re.compile(rb"\AHTTP/1\.[01] (\d{3})")

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


def bounded_client(endpoint: Endpoint, limits: Limits) -> httpx.AsyncClient:
    """One keep-alive client for a whole inspection of `endpoint`; each exchange's `limits.timeout` is
    enforced around it by `request_bounded`, httpx's own timeout is only a backstop. Over TLS the
    certificate is not verified (tls.client_context, shared: a plain endpoint never uses it, redirects being
    off); a hostname goes out as SNI and as Host."""
    headers: dict[str, str] = {}
    hooks: dict[str, list[Callable[[httpx.Request], Awaitable[None]]]] = {}
    if endpoint.hostname:
        default_port = 443 if endpoint.tls else 80
        port = "" if endpoint.port == default_port else f":{endpoint.port}"
        headers["Host"] = endpoint.hostname + port
        hooks["request"] = [partial(_send_name, endpoint.hostname)]
    return httpx.AsyncClient(
        timeout=limits.timeout + 1,
        trust_env=False,
        follow_redirects=False,
        verify=client_context(),
        headers=headers,
        event_hooks=hooks,
    )


async def _send_name(hostname: str, request: httpx.Request) -> None:
    """Name the server in the TLS handshake (SNI), though the URL holds its address."""
    request.extensions["sni_hostname"] = hostname


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

    return await timed(fetch(), limits)


async def get_bounded(url: str, limits: Limits, client: httpx.AsyncClient) -> Response:
    """GET `url` on `client`."""
    return await request_bounded(client, "GET", url, limits)


Fetch = Callable[[str], Awaitable[Response]]
"""GET one path (with its query string) of a server, bounded."""


async def _get_path(base: str, limits: Limits, client: httpx.AsyncClient, path: str) -> Response:
    return await get_bounded(base + path, limits, client)


def fetcher(base: str, limits: Limits, client: httpx.AsyncClient) -> Fetch:
    """GET of paths below `base` (`Endpoint.url`) on `client`."""
    return partial(_get_path, base, limits, client)


# --- raw replies (identification) -----------------------------------------------------------------


def http_parts(reply: bytes) -> tuple[int, bytes, bytes, str] | None:
    """(status, head, body, banner: the status line) of a raw HTTP/1.x reply."""
    found = _STATUS.match(reply)
    if found is None:
        return None
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(found.group(1)), head, body, head.split(b"\r\n", 1)[0].decode("latin-1")


def json_software(body: bytes, parse: Callable[[Any], Software | None]) -> Software | None:
    """`parse` applied to the JSON of `body`; None if `body` is not JSON (or `parse` rejects it)."""
    try:
        return parse(json.loads(body))
    except (ValueError, RecursionError):
        return None


# --- answers (inspection) -------------------------------------------------------------------------


def refused(response: Response) -> bool:
    """True if the server answered that it needs credentials."""
    return response.status in (401, 403)


def json_body(response: Response, path: str) -> Any:
    """The JSON of a successful answer to GET `path`."""
    if response.status != 200:
        raise CommandRefused(f"GET {path} answered HTTP {response.status}")
    try:
        return json.loads(response.body)
    except RecursionError:
        raise ProtocolError(f"GET {path} answered JSON nested too deeply") from None
    except ValueError:
        raise ProtocolError(f"GET {path} did not answer JSON") from None
