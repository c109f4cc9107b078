"""Scripted and hostile servers for the protocol tests: a real listening socket on 127.0.0.1 (a free
port) that runs a given connection handler while a protocol module inspects it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from leaksonar.model import Identity, Inspection, Limits
from leaksonar.protocols.base import Endpoint, ProtocolModule

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Request = TypeVar("Request")


async def inspect_server(
    protocol: ProtocolModule, handler: Handler, identity: Identity, limits: Limits
) -> tuple[Inspection, float]:
    """`protocol.inspect` of a server on 127.0.0.1 that runs `handler` per connection, and its duration."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        started = time.monotonic()
        found = await protocol.inspect(Endpoint("127.0.0.1", port), identity, limits)
        return found, time.monotonic() - started


def run(
    protocol: ProtocolModule, handler: Handler, identity: Identity, limits: Limits
) -> tuple[Inspection, float]:
    return asyncio.run(inspect_server(protocol, handler, identity, limits))


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and never answer."""
    await reader.read()
    writer.close()


def sends(data: bytes) -> Handler:
    """A handler that sends `data` on connect, then nothing more until the client hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await reader.read()
        writer.close()

    return handle


def scripted(
    read: Callable[[asyncio.StreamReader], Awaitable[Request | None]],
    replies: Callable[[Request], bytes],
    verb: Callable[[Request], bytes],
    seen: list[bytes] | None = None,
    delay: float = 0.0,
) -> Handler:
    """A handler answering each request that `read` parses (None: the client is done) with
    `replies(request)` (b"": hang up) after `delay` seconds, noting each request's `verb` in `seen`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while (request := await read(reader)) is not None:
                if seen is not None:
                    seen.append(verb(request))
                await asyncio.sleep(delay)
                if not (reply := replies(request)):
                    break
                writer.write(reply)
                await writer.drain()
        writer.close()

    return handle


FAST = Limits(timeout=1.0, service_budget=5.0)
"""Limits of the protocol tests: a second per read, five per service."""


async def read_http(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    """(method, target, body) of one HTTP request; None at EOF."""
    line = await reader.readline()
    if not line:
        return None
    method, target, _ = line.decode().split(" ", 2)
    length = 0
    while (header := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode().partition(":")
        length = int(value) if name.lower() == "content-length" else length
    return method, target, await reader.readexactly(length)


def strings(value: object) -> Iterator[str]:
    """Every string inside a sample document (keys of mappings included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
