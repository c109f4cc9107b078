"""A byte-capped relay on 127.0.0.1 between a SQL driver and the server it inspects.

asyncpg and aiomysql read a whole message (asyncpg: a DataRow may announce 2 GB) or a whole result set
(both: rows until the server says it is done) into memory, and neither can be told a limit. Capping them
by hand-written readers would mean rewriting their protocols (extended query, authentication, type
decoding); a relay caps them without knowing any protocol: after each request of the driver, the server
may send at most `Limits.max_bytes` bytes. One answer (a huge row, an endless stream of rows, endless
notices) can then never exceed the cap, the driver's memory stays bounded, and every legitimate reply of
an inspection (catalog listings, sampled rows cut to `value_chars`) fits well within it. Past the cap
the relay cuts both connections and remembers why, so that the driver's "connection lost" is reported
as the reply that was too large.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from leaksonar.model import Limits
from leaksonar.protocols.base import Endpoint, ReplyTooLarge

_CHUNK = 64 * 1024


class CappedRelay:
    """One driver connection relayed to `upstream`; the server's answer to each request is capped."""

    def __init__(self, upstream: Endpoint, limits: Limits) -> None:
        self.upstream, self.limits = upstream, limits
        self.overflow: ReplyTooLarge | None = None
        """Set when the server sent more than the cap in answer to one request."""
        self._answered = 0
        self._connection: asyncio.Task[None] | None = None

    def check(self, exc: BaseException) -> None:
        """Raise the overflow instead of `exc` when the relay caused it by cutting the connection."""
        if self.overflow is not None:
            raise self.overflow from exc

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The server's callback: a plain function that starts the connection's task itself, because
        asyncio (3.11) reports a coroutine callback's task cancelled before it ran (Ctrl-C, SIGTERM) as
        an "Exception in callback" traceback."""
        if self._connection is not None:  # one driver connection per relay
            writer.transport.abort()
            return
        self._connection = asyncio.create_task(self._serve(reader, writer))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pumps: list[asyncio.Task[None]] = []
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await self.upstream.connect(self.limits, buffer=_CHUNK)
            pumps = [
                asyncio.create_task(self._requests(reader, upstream)),
                asyncio.create_task(self._answers(up_reader, writer)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, TimeoutError, asyncio.CancelledError):
            pass  # unreachable server, or the relay is closing: either way the driver's connection ends
        finally:
            for pump in pumps:
                pump.cancel()
            writer.transport.abort()
            if upstream is not None:
                upstream.transport.abort()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(_CHUNK):
                self._answered = 0
                writer.write(data)
                await writer.drain()

    async def _answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cap = self.limits.max_bytes
        with contextlib.suppress(OSError):
            while data := await reader.read(_CHUNK):
                self._answered += len(data)
                if self._answered > cap:
                    self.overflow = ReplyTooLarge(
                        f"the server sent over {cap} bytes in answer to one request"
                    )
                    return
                writer.write(data)
                await writer.drain()

    async def _close(self) -> None:
        if self._connection is not None:
            self._connection.cancel()
            await asyncio.gather(self._connection, return_exceptions=True)


@contextlib.asynccontextmanager
async def capped_relay(upstream: Endpoint, limits: Limits) -> AsyncIterator[tuple[CappedRelay, Endpoint]]:
    """A relay to `upstream` for one driver connection, and its own address (127.0.0.1, a free port)."""
    relay = CappedRelay(upstream, limits)
    server = await asyncio.start_server(relay._accept, "127.0.0.1", 0, limit=_CHUNK)
    try:
        yield relay, Endpoint("127.0.0.1", server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await relay._close()
