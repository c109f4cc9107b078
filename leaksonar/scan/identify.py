"""Which protocol answers on an open port, whatever the port number.

Probes are ordered so that the common case costs one round trip: the probe of the protocol the port
usually carries goes first (on the socket discovery already opened), then a plain HTTP request, which
HTTP servers, Redis and every server-speaks-first protocol answer recognisably, then the rest. Every
reply is offered to every protocol's strict `match`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from leaksonar.model import Identity, Limits, Tls
from leaksonar.protocols import BY_NAME, CONFIRMS, CONTINUES, PROTOCOLS
from leaksonar.protocols.base import BoundedStream, Endpoint, timed
from leaksonar.protocols.http import PROTOCOL as HTTP
from leaksonar.protocols.tls import describe, wants_tls

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


_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*(\d{1,9})[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


def _body_due(reply: bytes) -> bool:
    """An HTTP reply whose body is still to come (a server that wrote its head and body apart): the
    protocol that names it may read the body (an S3 bucket list), not the generic HTTP match."""
    if not reply.startswith(b"HTTP/1."):
        return False
    head, ended, body = reply.partition(b"\r\n\r\n")
    length = _CONTENT_LENGTH.search(head)
    return not ended or (length is not None and len(body) < int(length.group(1)))


def printable(banner: bytes) -> str:
    """A bounded, printable rendering of unrecognised bytes."""
    return banner[:256].decode("latin-1").encode("unicode_escape").decode("ascii")[:512]


Reply = tuple[bytes, Tls | None]
"""What one probe got: the reply bytes (b"" if none) and, over TLS, what the handshake showed."""
Keep = Callable[[bytes], bool] | None
"""Whether the inspection goes on over the connection that got this reply (None: never)."""


async def _exchange(
    endpoint: Endpoint, probe: bytes, limits: Limits, sock: socket.socket | None, keep: Keep = None
) -> tuple[Reply, BoundedStream | None]:
    """Send `probe` (nothing for a listen step) and return the first reply bytes; over TLS, the handshake
    comes first and a silent server still yields what it showed. The connection (its handshake
    included) and the reply share one `limits.timeout`: a server that finishes its handshake just in
    time and then stays silent costs one timeout, not two. The connection is closed, or returned open
    where `keep` says of the reply that the inspection goes on over it."""
    clock = asyncio.get_running_loop()
    deadline = clock.time() + limits.timeout
    if sock is not None:
        reader, writer = await asyncio.open_connection(sock=sock, limit=limits.banner_bytes)
    else:
        reader, writer = await endpoint.connect(limits, buffer=limits.banner_bytes)
    tls: Tls | None = None
    kept: BoundedStream | None = None
    try:
        if endpoint.tls:
            tls = describe(writer.get_extra_info("ssl_object"))
        if probe:
            writer.write(probe)
        async with asyncio.timeout_at(deadline):
            reply = await reader.read(limits.banner_bytes)
        if reply and (not match(reply) or _body_due(reply)):  # split across segments: one more short read
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    reply += await reader.read(limits.banner_bytes - len(reply))
        if keep is not None and len(reply) < limits.banner_bytes and keep(reply):  # nothing left unread
            kept = BoundedStream(reader, writer, limits)
        return (reply, tls), kept
    except (OSError, TimeoutError):
        return (b"", tls), None
    finally:  # over TLS no close_notify is waited for (asyncio would wait 30 s for the server's)
        if kept is None and endpoint.tls:
            writer.transport.abort()
        elif kept is None:
            writer.close()


async def _attempt(
    endpoint: Endpoint, probe: bytes, limits: Limits, sock: socket.socket | None, keep: Keep = None
) -> tuple[Reply, BoundedStream | None]:
    """The reply to one probe; b"" when the connection (or its TLS handshake) failed, closed or stayed
    silent. With it, the connection where `keep` says so of the reply."""
    try:
        return await _exchange(endpoint, probe, limits, sock, keep)
    except (OSError, TimeoutError):  # ssl.SSLError is an OSError
        return (b"", None), None


async def _reply(endpoint: Endpoint, probe: bytes, limits: Limits) -> Reply:
    """The reply to `probe` on a new connection, closed after it."""
    return (await _attempt(endpoint, probe, limits, None))[0]


async def _attempt_tls(endpoint: Endpoint, probe: bytes, limits: Limits) -> tuple[Reply, str]:
    """The reply to `probe` over TLS, and why the handshake failed: "" when it did not, or when the
    server only hung up or stayed silent (as a plaintext server does to a ClientHello)."""
    try:
        return (await _exchange(endpoint, probe, limits, None))[0], ""
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return (b"", None), ""
    except ssl.SSLError as exc:  # the server broke the handshake: what OpenSSL saw, never server text
        return (b"", None), f"TLS handshake failed: {exc.reason or type(exc).__name__}"
    except (OSError, TimeoutError):
        return (b"", None), ""


def _first_match(replies: list[Reply]) -> Identity | None:
    return next((identity for reply, _ in replies if (identity := match(reply)) is not None), None)


async def _negotiate_tls(identity: Identity, endpoint: Endpoint, limits: Limits) -> Identity:
    """For a protocol that negotiates TLS inside its plaintext connection (PostgreSQL, MySQL): ask for
    it on a fresh connection and, if the server agrees, the identity with what the handshake showed."""
    from leaksonar.protocols import REQUEST_TLS

    request = REQUEST_TLS.get(identity.protocol)
    if request is None:
        return identity
    try:
        async with await BoundedStream.open(endpoint, limits) as stream:
            if await timed(request(stream), limits):
                return replace(identity, tls=await stream.start_tls(endpoint.hostname), starttls=True)
    except Exception:  # no TLS, or a broken handshake: the plaintext identity stands
        pass
    return identity


async def identify(
    ip: str, port: int, sock: socket.socket | None, limits: Limits, hostname: str | None = None
) -> Identity:
    """Identity of the service on an open port (`identify_keeping`, its connection closed)."""
    identity, kept = await identify_keeping(ip, port, sock, limits, hostname)
    if kept is not None:
        await kept.close()
    return identity


async def identify_keeping(
    ip: str, port: int, sock: socket.socket | None, limits: Limits, hostname: str | None = None
) -> tuple[Identity, BoundedStream | None]:
    """Identity of the service on an open port; protocol "unknown" with its banner if nothing matches.

    The first probe goes on `sock`, the connection discovery opened (None: connect anew). If its
    reply names nothing, the other probes go out at once, each on its own connection, so a service
    that stays silent to wrong probes costs one timeout, not one per probe; the first match in plan
    order wins. A TLS handshake goes out with them: when nothing matched in plaintext, or a reply
    was a TLS record or an HTTP server asking for TLS, the probes are sent again over TLS and the
    identity records the handshake (`Identity.tls`). `hostname` goes out as SNI.

    With the identity comes the first probe's connection, still open, where the inspection goes on
    over it (`protocols.CONTINUES`: the protocol's own probe got its clean reply in plaintext); None
    otherwise.
    """
    plain = Endpoint(ip, port, hostname=hostname)
    secure = replace(plain, tls=True)
    first, *rest = probe_plan(port)
    reply, kept = await _attempt(plain, first, limits, sock, partial(_continues, first))
    replies = [reply]
    found = match(reply[0])
    if found is not None and not wants_tls(reply[0]):
        if kept is not None:
            return found, kept
        return await _negotiate_tls(await _confirmed(found, [reply[0]], plain, limits), plain, limits), None
    if kept is not None:
        await kept.close()
    hello: tuple[Reply, str] | None = None
    """The reply over TLS and why its handshake failed; None until TLS was tried (once: a failed
    handshake is not tried again)."""
    if found is None:
        *more, hello = await asyncio.gather(
            *(_reply(plain, probe, limits) for probe in rest), _attempt_tls(secure, first, limits)
        )
        replies += more
        found = _first_match(replies)
    if found is None or any(wants_tls(reply) for reply, _ in replies):
        if hello is None:
            hello = await _attempt_tls(secure, first, limits)
        if (tls := hello[0][1]) is not None:
            over_tls = match(hello[0][0])
            over_tls = await _confirmed(over_tls, [hello[0][0]], secure, limits) if over_tls else None
            over_tls = over_tls or await _recognise(secure, rest, limits)
            return replace(over_tls or found or _unknown([hello[0]]), tls=tls), None
    if found is not None:
        found = await _confirmed(found, [r for r, _ in replies], plain, limits)
        return await _negotiate_tls(found, plain, limits), None
    unknown = _unknown(replies)
    return replace(unknown, banner=hello[1]) if hello and hello[1] and not unknown.banner else unknown, None


async def _confirmed(found: Identity, replies: list[bytes], endpoint: Endpoint, limits: Limits) -> Identity:
    """`found`; or, when only the generic HTTP module named the service and the reply it named looks like
    the answer of a protocol in `CONFIRMS`, what that protocol's own request identifies (one more
    connection, only for such replies)."""
    if found.protocol != HTTP.name:
        return found
    reply = next((r for r in replies if match(r) == found), b"")
    for looks_like, probe in CONFIRMS.values():
        if looks_like(reply):
            confirmed = match((await _reply(endpoint, probe, limits))[0])
            if confirmed is not None and confirmed.protocol != HTTP.name:
                return confirmed
    return found


def _continues(probe: bytes, reply: bytes) -> bool:
    """Whether the inspection goes on over the connection on which `probe` got `reply`: its protocol's
    own probe got one whole line and nothing after it (a line recognised before its end came, or bytes
    past it, would be read as the reply to the inspection's first command)."""
    if not reply.endswith(b"\r\n") or reply.count(b"\n") != 1:  # first: most replies end here, unmatched
        return False
    identity = match(reply)
    return (
        identity is not None and identity.protocol in CONTINUES and BY_NAME[identity.protocol].probe == probe
    )


async def _recognise(endpoint: Endpoint, probes: list[bytes], limits: Limits) -> Identity | None:
    """The first identity in plan order among the replies to `probes`, sent at once."""
    return _first_match(list(await asyncio.gather(*(_reply(endpoint, p, limits) for p in probes))))


def _unknown(replies: list[Reply]) -> Identity:
    return Identity(protocol="unknown", banner=printable(next((r for r, _ in replies if r), b"")))
