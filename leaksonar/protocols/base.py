"""The interface every protocol module implements, and bounded socket I/O for hand-written probes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from leaksonar.formats import address_port
from leaksonar.model import Identity, Inspection, Limits, Tls
from leaksonar.protocols.tls import client_context, describe

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    tls: bool = False
    """Speak TLS on the connection from its first byte."""
    starttls: bool = False
    """Ask for TLS inside the protocol's plaintext connection (PostgreSQL's SSLRequest, MySQL's
    CLIENT_SSL); `tls` is then False."""
    hostname: str | None = None
    """The name the service is scanned by: sent as TLS SNI and HTTP Host."""

    @property
    def url(self) -> str:
        """The base URL of an HTTP service here: "http://ip:port" or "https://[ipv6]:port"."""
        return f"{'https' if self.tls else 'http'}://{address_port(self.ip, self.port)}"

    async def connect(self, limits: Limits, buffer: int = 64 * 1024) -> Streams:
        """A connection within `limits.timeout`, over TLS if `tls` (handshake included)."""
        if not self.tls:
            return await timed(asyncio.open_connection(self.ip, self.port, limit=buffer), limits)
        return await timed(
            asyncio.open_connection(
                self.ip,
                self.port,
                limit=buffer,
                ssl=client_context(),
                server_hostname=self.hostname or "",
                ssl_handshake_timeout=limits.timeout,
            ),
            limits,
        )


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class ProtocolModule(Protocol):
    """One database protocol: how to recognise it from a reply, and how to inspect it read-only."""

    name: str
    default_ports: tuple[int, ...]
    probe: bytes | None
    """Bytes to send to make the server answer (None: the server speaks first)."""

    def match(self, reply: bytes) -> Identity | None:
        """Identity if `reply` (to any probe, or an unsolicited greeting) comes from this protocol."""
        ...

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Read-only inspection. Must respect `limits`; must not raise for server misbehaviour."""
        ...


class ReplyTooLarge(Exception):
    """A server announced or sent more bytes than the cap allows."""


class ProtocolError(Exception):
    """The server sent bytes that do not follow the protocol."""


class CommandRefused(Exception):
    """The server answered a command with an error."""


class AuthRequired(Exception):
    """The server wants a password: the one outcome for that; none is ever sent or guessed."""


async def timed(call: Awaitable[T], limits: Limits) -> T:
    """`call` within one operation's timeout (`limits.timeout`), run in the calling task: a timer, not a
    task of its own as `asyncio.wait_for` makes (a task per read was the largest cost of inspection)."""
    async with asyncio.timeout(limits.timeout):
        return await call


_DISCARD_CHUNK = 64 * 1024


class BoundedStream:
    """A TCP connection whose every read has a byte cap and a timeout. A read that the bytes already
    received can serve does not wait, so it needs no timer: a pipelined reply of many values arms one
    timer per network read, not one per value."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits) -> None:
        self.reader, self.writer, self.limits = reader, writer, limits

    @property
    def _received(self) -> bytearray:
        """Bytes received and not read yet (the StreamReader's buffer)."""
        return self.reader._buffer

    @classmethod
    async def open(cls, endpoint: Endpoint, limits: Limits) -> BoundedStream:
        reader, writer = await endpoint.connect(limits)
        return cls(reader, writer, limits)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await timed(self.writer.drain(), self.limits)

    async def read_exactly(self, n: int) -> bytes:
        if n > self.limits.max_bytes:
            raise ReplyTooLarge(f"server announced {n} bytes, cap is {self.limits.max_bytes}")
        if len(self._received) >= n:
            return await self.reader.readexactly(n)
        return await timed(self.reader.readexactly(n), self.limits)

    async def read_some(self, n: int = _DISCARD_CHUNK) -> bytes:
        """Up to `n` bytes: those received already, else the next to arrive within the timeout; b"" at
        the end of the stream."""
        if self._received:
            return await self.reader.read(n)
        return await timed(self.reader.read(n), self.limits)

    async def read_line(self, max_len: int = 64 * 1024) -> bytes:
        """One line ending in \\n (returned with its terminator)."""
        try:
            if b"\n" in self._received:
                line = await self.reader.readuntil(b"\n")
            else:
                line = await timed(self.reader.readuntil(b"\n"), self.limits)
        except asyncio.LimitOverrunError as exc:
            raise ReplyTooLarge(f"line longer than {self.reader._limit} bytes") from exc
        if len(line) > max_len:
            raise ReplyTooLarge(f"line of {len(line)} bytes, cap is {max_len}")
        return line

    async def read_bulk(self, size: int, keep: int) -> bytes:
        """A `size`-byte value followed by CRLF; only the first `keep` bytes are kept."""
        kept = await self.read_exactly(min(size, keep))
        left = size - len(kept)
        while left > 0:
            left -= len(await self.read_exactly(min(left, _DISCARD_CHUNK)))
        if await self.read_exactly(2) != b"\r\n":
            raise ProtocolError("a value was not followed by CRLF")
        return kept

    async def start_tls(self, hostname: str | None) -> Tls:
        """Turn this connection into TLS (after a protocol's own request for it), within the timeout."""
        await timed(
            self.writer.start_tls(
                client_context(), server_hostname=hostname or "", ssl_handshake_timeout=self.limits.timeout
            ),
            self.limits,
        )
        return describe(self.writer.get_extra_info("ssl_object"))

    async def close(self) -> None:
        """Close within a second; then the socket goes (asyncio would keep a TLS one 30 s for a
        close_notify that a hostile server never sends)."""
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        except (OSError, TimeoutError):
            self.writer.transport.abort()

    async def __aenter__(self) -> BoundedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
