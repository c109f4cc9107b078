"""Browser protections: state-changing requests only from the app's own pages (Origin, else Referer), and
the security headers on every response (a Content-Security-Policy without inline scripts, nosniff, no
referrer to other sites, no framing)."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.datastructures import MutableHeaders
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
