"""Which protocol answers on an open port, whatever the port number.

Probes are ordered so that the common case costs one round trip: the probe of the protocol the port
usually carries goes first (on the socket discovery already opened), then a plain HTTP request, which
HTTP servers, Redis and every server-speaks-first protocol answer recognisably, then the rest. Every
reply is offered to every protocol's strict `match`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from leaksonar.model import Identity, Limits
from leaksonar.protocols import PROTOCOLS
from leaksonar.protocols.http import PROTOCOL as HTTP

_LISTEN = b""
"""A step that sends nothing and waits for the server's greeting."""


def probe_plan(port: int) -> list[bytes]:
    """Distinct probes to try on `port`, most likely first."""
    plan: list[bytes] = [p.probe or _LISTEN for p in PROTOCOLS if port in p.default_ports]
    plan.append(HTTP.probe)
    plan.extend(p.probe for p in PROTOCOLS if p.probe)
    return list(dict.fromkeys(plan))


def match(reply: bytes) -> Identity | None:
    for protocol in PROTOCOLS:
        if (identity := protocol.match(reply)) is not None:
            return identity
    return None


def printable(banner: bytes) -> str:
    """A bounded, printable rendering of unrecognised bytes."""
    return banner[:256].decode("latin-1").encode("unicode_escape").decode("ascii")[:512]


async def _exchange(ip: str, port: int, probe: bytes, limits: Limits, sock: socket.socket | None) -> bytes:
    """Send `probe` (nothing for a listen step) and return the first reply bytes (b'' if none)."""
    if sock is not None:
        reader, writer = await asyncio.open_connection(sock=sock, limit=limits.banner_bytes)
    else:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(ip, port, limit=limits.banner_bytes), limits.timeout
        )
    try:
        if probe:
            writer.write(probe)
        reply = await asyncio.wait_for(reader.read(limits.banner_bytes), limits.timeout)
        if reply and not match(reply):  # a reply split across segments: give it one more short read
            with contextlib.suppress(TimeoutError):
                reply += await asyncio.wait_for(reader.read(limits.banner_bytes - len(reply)), 0.2)
        return reply
    finally:
        writer.close()


async def _attempt(ip: str, port: int, probe: bytes, limits: Limits, sock: socket.socket | None) -> bytes:
    """The reply to one probe; b'' when the connection failed, closed or stayed silent."""
    try:
        return await _exchange(ip, port, probe, limits, sock)
    except (OSError, TimeoutError):
        return b""


async def identify(ip: str, port: int, sock: socket.socket | None, limits: Limits) -> Identity:
    """Identity of the service on an open port; protocol "unknown" with its banner if nothing matches.

    The first probe goes on `sock`, the connection discovery opened (None: connect anew). If its
    reply names nothing, the other probes go out at once, each on its own connection, so a service
    that stays silent to wrong probes costs one timeout, not one per probe; the first match in plan
    order wins.
    """
    first, *rest = probe_plan(port)
    replies = [await _attempt(ip, port, first, limits, sock)]
    if (identity := match(replies[0])) is not None:
        return identity
    replies += await asyncio.gather(*(_attempt(ip, port, probe, limits, None) for probe in rest))
    for reply in replies[1:]:
        if (identity := match(reply)) is not None:
            return identity
    return Identity(protocol="unknown", banner=printable(next((r for r in replies if r), b"")))
