"""Bounded HTTP/1.1 (httpwire over `BoundedStream`): keep-alive connections for one inspected service, every
reply's headers and body capped in bytes and every exchange timed; and the helpers the HTTP protocol modules
share (raw replies for `match`, JSON answers for `inspect`)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

from leaksonar.model import Limits, Software
from leaksonar.protocols.base import BoundedStream, CommandRefused, Endpoint, ProtocolError, timed
from leaksonar.protocols.httpwire import Unanswered, Wire, request_bytes
from leaksonar.protocols.useragent import USER_AGENT

_STATUS = re.compile(rb"\AHTTP/1\.[01] (\d{3})")

HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
"""Sent with every request: leaksonar names itself, and bodies come uncompressed (no gzip bombs)."""
MAX_HEAD = 64 * 1024
"""Most bytes of a reply's status line and headers, of a chunk's size line and of its trailer fields
(`limits.max_bytes` if smaller); past it the reply is too large."""
_TARGET_SAFE = "/?&=%:@!$'()*+,;~[]"
"""Characters a request target keeps as they are (with letters, digits and -._~); others are %-escaped."""


class Headers:
    """A reply's header fields; `get` ignores the name's case and joins a repeated field with ", "."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Sequence[tuple[bytes, bytes]]) -> None:
        self._fields = fields
        """(lower-case name, value) as received."""

    def get(self, name: str, default: str | None = None) -> str | None:
        key = name.lower().encode("latin-1")
        values = [value.decode("latin-1") for field, value in self._fields if field == key]
        return ", ".join(values) if values else default


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Headers
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON or nested too deeply to decode."""
        try:
            return json.loads(self.body)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


@dataclass(slots=True)
class _Connection:
    stream: BoundedStream
    wire: Wire


class HttpClient:
    """Keep-alive HTTP/1.1 to one endpoint for one inspection: no redirect is followed and no cookie kept.
    A connection serves one request at a time and is kept for the next (requests at once, as many as the
    caller runs together, get connections of their own); a GET that finds its kept connection closed by
    the server, before a byte of the answer, is sent once more on a new one."""

    def __init__(self, endpoint: Endpoint, limits: Limits) -> None:
        self.endpoint, self.base = endpoint, endpoint.url
        self._max_head = min(MAX_HEAD, limits.max_bytes)
        host = endpoint.hostname or (f"[{endpoint.ip}]" if ":" in endpoint.ip else endpoint.ip)
        default_port = 443 if endpoint.tls else 80
        self._host = host if endpoint.port == default_port else f"{host}:{endpoint.port}"
        self._idle: list[_Connection] = []

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        while self._idle:
            await self._idle.pop().stream.close()

    async def request(
        self,
        method: str,
        url: str,
        limits: Limits,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        payload: Any = None,
    ) -> Response:
        """`method` `url` (below `base`) with `params` in its query string and `payload` as a JSON body;
        ReplyTooLarge past `limits.max_bytes` of body, TimeoutError past `limits.timeout` in all. Callers
        send only reads: GET, or a POST that an API defines as a read (documented where used)."""
        if not url.startswith(self.base):
            raise ValueError(f"{url!r} is not below {self.base!r}")
        target = quote(url[len(self.base) :] or "/", safe=_TARGET_SAFE)
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        fields = [("Host", self._host), ("Accept", "*/*"), ("Connection", "keep-alive")]
        fields += {**HEADERS, **(headers or {})}.items()
        body = b"" if payload is None else json.dumps(payload).encode()
        if payload is not None:
            fields.append(("Content-Type", "application/json"))
        if body or method == "POST":
            fields.append(("Content-Length", str(len(body))))
        request = request_bytes(method, target, fields, body)
        return await timed(self._round_trip(request, method == "GET", limits), limits)

    async def _round_trip(self, request: bytes, again: bool, limits: Limits) -> Response:
        """`request` on a kept connection, or a new one; sent `again` on a new one if the kept connection
        ended unanswered."""
        connection = self._kept()
        if connection is not None:
            try:
                return await self._exchange(connection, request, limits)
            except Unanswered as exc:
                if not again:
                    raise exc.failure from None
        stream = await BoundedStream.open(self.endpoint, limits)
        try:
            return await self._exchange(_Connection(stream, Wire(stream.reader)), request, limits)
        except Unanswered as exc:
            raise exc.failure from None

    def _kept(self) -> _Connection | None:
        """An idle connection the server has not closed nor reset nor sent anything on since, if one is
        kept."""
        while self._idle:
            connection = self._idle.pop()
            stream = connection.stream
            if not (stream.reader.at_eof() or stream.writer.is_closing()) and connection.wire.idle():
                return connection
            connection.stream.writer.transport.abort()
        return None

    async def _exchange(self, connection: _Connection, request: bytes, limits: Limits) -> Response:
        """One request and its answer on `connection`, kept afterwards if both sides allow; dropped
        (aborted: a hostile server gets no grace) if the exchange fails."""
        try:
            response, keep = await self._answer(connection, request, limits)
        except BaseException:
            connection.stream.writer.transport.abort()
            raise
        if keep and connection.wire.idle():
            self._idle.append(connection)
        else:
            connection.stream.writer.transport.abort()
        return response

    async def _answer(self, connection: _Connection, request: bytes, limits: Limits) -> tuple[Response, bool]:
        """Send `request` and read the answer, its body capped at `limits.max_bytes`; and whether the
        connection may serve another request."""
        writer, wire = connection.stream.writer, connection.wire
        if writer.is_closing():  # reset since it opened: uvloop would raise RuntimeError on the write
            raise Unanswered(ConnectionResetError("the server reset the connection"))
        try:
            writer.write(request)
            await writer.drain()
        except ConnectionError as exc:
            raise Unanswered(exc) from None
        await wire.first_bytes()
        head = await wire.head(self._max_head)
        body, keep = await wire.body(head, self._max_head, limits.max_bytes)
        return Response(head.status, Headers(head.fields), body), keep


def bounded_client(endpoint: Endpoint, limits: Limits) -> HttpClient:
    """One keep-alive client for a whole inspection of `endpoint` (an async context manager). Over TLS the
    certificate is not verified (tls.client_context); a hostname goes out as SNI and as Host."""
    return HttpClient(endpoint, limits)


async def get_bounded(url: str, limits: Limits, client: HttpClient) -> Response:
    """GET `url` on `client`."""
    return await client.request("GET", url, limits)


Fetch = Callable[[str], Awaitable[Response]]
"""GET one path (with its query string) of a server, bounded."""


async def _get_path(base: str, limits: Limits, client: HttpClient, path: str) -> Response:
    return await get_bounded(base + path, limits, client)


def fetcher(base: str, limits: Limits, client: HttpClient) -> Fetch:
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
