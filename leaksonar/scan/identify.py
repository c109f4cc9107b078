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


async def identify(ip: str, port: int, sock: socket.socket | None, limits: Limits) -> Identity:
    """Identity of the service on an open port; protocol "unknown" with its banner if nothing matches.

    `sock` is the connection discovery opened, used for the first probe (None: connect anew).
    """
    banner = b""
    for step, probe in enumerate(probe_plan(port)):
        try:
            reply = await _exchange(ip, port, probe, limits, sock if step == 0 else None)
        except (OSError, TimeoutError):
            continue
        if (identity := match(reply)) is not None:
            return identity
        banner = banner or reply
    return Identity(protocol="unknown", banner=printable(banner))
