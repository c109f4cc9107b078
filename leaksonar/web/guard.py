"""Browser protections: requests only for a host name the server answers to (no DNS rebinding), request
bodies of a few KB at most, state-changing requests only from the app's own pages (Origin, else Referer),
and the security headers on every response (a Content-Security-Policy without inline scripts, nosniff,
no referrer to other sites, no framing)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Collection
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Scripts only from /static; inline styles stay allowed (bar widths, the charts' SVG)."""
SWAGGER_CDN = "https://cdn.jsdelivr.net"
"""Where FastAPI's /docs page takes Swagger UI from."""
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
"""The names a browser on this machine uses for a server bound to loopback."""
MAX_BODY = 4096
"""Bytes a request body may have: the app's only bodies are the sign-in and sign-out forms."""
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::[0-9]{1,5})?")
"""A Host header: a name, an IPv4 address or a bracketed IPv6 address, then maybe a port."""


def host_name(value: str) -> str | None:
    """The host in a `Host` header or an allowed-host name, lower-case and without its port (an IPv6
    address keeps its brackets); None for anything else."""
    match = _HOST.fullmatch(value.strip().lower())
    return match[1] if match else None


async def send_error(
    send: Send, status: int, message: str, headers: Collection[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with the API's error shape, {"error": "one line"}, from ASGI middleware."""
    body = json.dumps({"error": message}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


class HostCheck:
    """ASGI middleware: 400 for a request whose `Host` is none of `allowed` (names; ports are not
    compared). A page on another site whose name an attacker re-points at this address (DNS rebinding)
    sends its own name as Host, so it is refused before the Origin check, which it would pass."""

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] in ("http", "websocket")
            and host_name(Headers(scope=scope).get("host", "")) not in self.allowed
        ):
            await send_error(
                send, 400, "this server does not answer to that host name (see serve --allowed-host)"
            )
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: 413 for a request body over `limit` bytes, by its Content-Length or, while it
    arrives, by what has come so far; never more than `limit` bytes are held. The app gets the body read
    here as it was sent."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "").lstrip("0")
        longer = len(declared) > len(str(self.limit))  # no int() of thousands of digits
        if declared.isascii() and declared.isdigit() and (longer or int(declared) > self.limit):
            await self._refuse(send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def receive_body() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, receive_body, send)

    async def _refuse(self, send: Send) -> None:
        await send_error(send, 413, f"request body over {self.limit} bytes")


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL; the port filled in for http and https."""
    try:
        parts = urlsplit(url)
        return parts.scheme, (parts.hostname or ""), parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # a port that is no number
        return "", "", None


def same_origin(request: Request) -> None:
    """FastAPI dependency: 403 for a state-changing request sent by a page of another origin, judged by
    `Origin`, else `Referer`. A request with neither comes from no browser page (curl, a script) and
    passes: it cannot carry a victim's session by accident."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get("origin") or request.headers.get("referer")
    if sent is not None and _origin(sent) != _origin(str(request.url)):
        raise HTTPException(403, "cross-origin request refused")


def api_docs() -> tuple[bytes, str]:
    """The /docs page (Swagger UI) and its policy: Swagger UI's files from its CDN and the page's one inline
    script by its hash."""
    page = get_swagger_ui_html(openapi_url="/openapi.json", title="leaksonar API")
    inline = re.search(rb"<script>(.*?)</script>", bytes(page.body), re.S)
    assert inline, "FastAPI's Swagger UI page has its inline script"
    digest = base64.b64encode(hashlib.sha256(inline[1]).digest()).decode()
    policy = (
        f"default-src 'self'; script-src {SWAGGER_CDN} 'sha256-{digest}'; "
        f"style-src {SWAGGER_CDN} 'unsafe-inline'; img-src 'self' data: https:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return bytes(page.body), policy


class SecurityHeaders:
    """ASGI middleware: the security headers on every response; `policies` maps a path to its own
    Content-Security-Policy (else POLICY)."""

    def __init__(self, app: ASGIApp, policies: dict[str, str]) -> None:
        self.app = app
        self.policies = policies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policies.get(scope["path"], POLICY)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = policy
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
            await send(message)

        await self.app(scope, receive, send_with_headers)
