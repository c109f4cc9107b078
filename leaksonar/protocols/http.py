"""Generic HTTP: recognised so that an unknown web service on a database port is named, not guessed."""

from __future__ import annotations

import re
from functools import partial
from typing import TYPE_CHECKING

from leaksonar.model import Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.useragent import USER_AGENT

if TYPE_CHECKING:
    from leaksonar.protocols.kit import Learned

_SERVER = re.compile(rb"^server:[ \t]*([^\r\n]+)", re.IGNORECASE | re.MULTILINE)
_TITLE = re.compile(rb"<title[^>]*>([^<]{0,200})", re.IGNORECASE)


def _software(server_header: str | None) -> Software | None:
    if not server_header:
        return None
    product = server_header.split()[0]
    name, _, version = product.partition("/")
    return Software(name.lower(), version or None)


class HttpProtocol:
    name = "http"
    default_ports = (80, 8080, 8000, 8888)
    probe = f"GET / HTTP/1.0\r\nUser-Agent: {USER_AGENT}\r\nAccept: */*\r\n\r\n".encode()

    def match(self, reply: bytes) -> Identity | None:
        if not reply.startswith(b"HTTP/1."):
            return None
        server = _SERVER.search(reply)
        status = reply.split(b"\r\n", 1)[0].decode("latin-1")
        return Identity(
            protocol=self.name,
            software=_software(server.group(1).decode("latin-1").strip() if server else None),
            auth="unknown",
            banner=status,
        )

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Status line, server and page title of `/`; generic HTTP holds no database to measure."""
        from leaksonar.protocols.kit import run_inspection

        return await run_inspection(self.name, partial(_front_page, endpoint), identity, limits)


async def _front_page(endpoint: Endpoint, learned: Learned) -> None:
    from leaksonar.protocols.httpclient import bounded_client, get_bounded

    async with bounded_client(endpoint, learned.limits) as client:
        response = await get_bounded(endpoint.url + "/", learned.limits, client)
    learned.details["status"] = response.status
    if (title := _TITLE.search(response.body)) is not None:
        learned.details["title"] = title.group(1).decode("utf-8", "replace").strip()


PROTOCOL = HttpProtocol()
