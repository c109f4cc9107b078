"""HTTP/1.x on the wire for the inspection's client: a request's bytes, and an answer read from a hostile
server within caps (its head, each chunk size line and trailer block in `max_head` bytes, at most
MAX_INTERIM interim replies, its body in `max_bytes`). Parsed by hand: h11's events cost more CPU than the
rest of an exchange over loopback."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from leaksonar.protocols.base import ProtocolError, ReplyTooLarge

MAX_INTERIM = 8
"""Most interim (1xx) replies taken before the answer to one request; past them the reply is too large."""
_READ = 64 * 1024
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?:[ \t][^\r\n]*)?")
_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([^\r\n]*)")
"""A field line; its value is stripped of spaces and tabs after the match (a lazy value followed by
`[ \t]*` would backtrack quadratically over a long inner run of spaces)."""
_END_MAX = 4
"""Most bytes of a head's end (CRLF CRLF): a block whose end is not in its first `cap` + 4 bytes is
over `cap`, however the bytes were split into reads."""
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,20})[ \t]*(?:;[^\r\n]*)?")
_UNSAFE = re.compile(r"[\r\n\0]")


class Unanswered(Exception):
    """The connection ended before a byte of the answer came; `failure` is what to report of it."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure


def request_bytes(method: str, target: str, fields: list[tuple[str, str]], body: bytes) -> bytes:
    """An HTTP/1.1 request; ValueError if a field would break the request's lines (or is not ASCII)."""
    if _UNSAFE.search(target) or any(_UNSAFE.search(name + value) for name, value in fields):
        raise ValueError("a request line or header field holds CR, LF or NUL")
    head = "".join([f"{method} {target} HTTP/1.1\r\n", *(f"{name}: {value}\r\n" for name, value in fields)])
    return head.encode("ascii") + b"\r\n" + body


@dataclass(slots=True)
class Head:
    status: int
    fields: list[tuple[bytes, bytes]]
    """(lower-case name, value)."""
    keep_alive: bool
    """HTTP/1.1 without `Connection: close`."""

    def values(self, name: bytes) -> list[bytes]:
        return [value for field_name, value in self.fields if field_name == name]


@dataclass(slots=True)
class Wire:
    """The bytes of one connection received and not parsed yet (kept across exchanges)."""

    reader: asyncio.StreamReader
    received: bytearray = field(default_factory=bytearray)

    async def more(self) -> None:
        """Append what the server sends next; ProtocolError if it closed the connection mid-reply."""
        data = await self.reader.read(_READ)
        if not data:
            raise ProtocolError("the server closed the connection mid-reply")
        self.received += data

    def idle(self) -> bool:
        """True if the server sent nothing past the last answer. A byte more (a body longer than its
        length, an unasked answer) must not be read as the next request's answer (RFC 9112 6.3), so the
        connection is not kept. The StreamReader's buffer is read as BoundedStream._received reads it."""
        return not (self.received or self.reader._buffer)

    async def first_bytes(self) -> None:
        """Wait for the answer's first bytes; Unanswered if none come."""
        try:
            data = await self.reader.read(_READ)
        except ConnectionError as exc:
            raise Unanswered(exc) from None
        if not data:
            raise Unanswered(ProtocolError("the server closed the connection without answering"))
        self.received += data

    async def block(self, end: re.Pattern[bytes], cap: int, what: str) -> bytes:
        """The bytes up to `end` (which is consumed too), at most `cap` of them; ReplyTooLarge past it."""
        searched = 0
        while (found := end.search(self.received, max(0, searched - _END_MAX + 1))) is None:
            if len(self.received) >= cap + _END_MAX:
                raise ReplyTooLarge(f"{what} over {cap} bytes")
            searched = len(self.received)
            await self.more()
        if found.start() > cap:
            raise ReplyTooLarge(f"{what} over {cap} bytes")
        block = bytes(self.received[: found.start()])
        del self.received[: found.end()]
        return block

    async def take(self, n: int) -> bytes:
        while len(self.received) < n:
            await self.more()
        taken = bytes(self.received[:n])
        del self.received[:n]
        return taken

    async def head(self, max_head: int) -> Head:
        """The answer's status and header fields, past at most MAX_INTERIM interim (1xx) replies."""
        for _ in range(MAX_INTERIM + 1):
            head = _parse_head(await self.block(_HEAD_END, max_head, "headers"))
            if head.status == 101:
                raise ProtocolError("the server switched protocols unasked")
            if head.status >= 200:
                return head
        raise ReplyTooLarge(f"more than {MAX_INTERIM} interim (1xx) replies")

    async def body(self, head: Head, max_head: int, max_bytes: int) -> tuple[bytes, bool]:
        """The body framed as `head` says, at most `max_bytes`; and whether the connection may be kept."""
        if head.status in (204, 304):
            return b"", head.keep_alive
        if coding := head.values(b"transfer-encoding"):
            if b",".join(coding).strip(b" \t").lower() != b"chunked":
                raise ProtocolError("the server used a transfer coding other than chunked")
            # with a Content-Length too, chunked wins but the framing is suspect: the connection is closed
            keep = head.keep_alive and not head.values(b"content-length")
            return await self._chunked(max_head, max_bytes), keep
        if lengths := head.values(b"content-length"):
            length = _content_length(lengths)
            if length > max_bytes:
                raise ReplyTooLarge(f"server announced a body over {max_bytes} bytes")
            return await self.take(length), head.keep_alive
        return await self._until_close(max_bytes), False

    async def _chunked(self, max_head: int, max_bytes: int) -> bytes:
        body = bytearray()
        while True:
            found = _CHUNK_SIZE.fullmatch(await self.block(_LINE_END, max_head, "a chunk size line"))
            if found is None:
                raise ProtocolError("the server sent a bad chunk size")
            size = int(found.group(1), 16)
            if size == 0:
                await self._trailers(max_head)
                return bytes(body)
            if len(body) + size > max_bytes:
                raise ReplyTooLarge(f"body over {max_bytes} bytes")
            body += await self.take(size)
            if await self.take(2) != b"\r\n":
                raise ProtocolError("a chunk was not followed by CRLF")

    async def _trailers(self, max_head: int) -> None:
        """Skip the trailer fields after the last chunk, `max_head` bytes of them at most."""
        while self.received in (b"", b"\r"):
            await self.more()
        if (end := _LINE_END.match(self.received)) is not None:
            del self.received[: end.end()]
        else:
            await self.block(_HEAD_END, max_head, "trailer fields")

    async def _until_close(self, max_bytes: int) -> bytes:
        while data := await self.reader.read(_READ):
            self.received += data
            if len(self.received) > max_bytes:
                raise ReplyTooLarge(f"body over {max_bytes} bytes")
        if len(self.received) > max_bytes:
            raise ReplyTooLarge(f"body over {max_bytes} bytes")
        body = bytes(self.received)
        self.received.clear()
        return body


def _parse_head(block: bytes) -> Head:
    if b"\0" in block:
        raise ProtocolError("the server sent NUL in its answer's head")
    status_line, *lines = _LINE_END.split(block)
    found = _STATUS_LINE.fullmatch(status_line)
    if found is None:
        raise ProtocolError("the server's answer does not start with an HTTP/1.x status line")
    fields: list[tuple[bytes, bytes]] = []
    for line in lines:
        if line[:1] in (b" ", b"\t") and fields:  # an obsolete folded continuation of the field above
            name, value = fields[-1]
            fields[-1] = (name, (value + b" " + line.strip(b" \t")).strip(b" "))
            continue
        if (parsed := _FIELD.fullmatch(line)) is None:
            raise ProtocolError("the server sent a malformed header field")
        fields.append((parsed.group(1).lower(), parsed.group(2).strip(b" \t")))
    head = Head(int(found.group(2)), fields, found.group(1) == b"1")
    if any(
        token.strip().lower() == b"close"
        for value in head.values(b"connection")
        for token in value.split(b",")
    ):
        head.keep_alive = False
    return head


def _content_length(values: list[bytes]) -> int:
    """The one length that every Content-Length value (and each of a list's items) gives."""
    lengths = {item.strip(b" \t") for value in values for item in value.split(b",")}
    if len(lengths) != 1 or not (length := lengths.pop()).isdigit() or len(length) > 20:
        raise ProtocolError("the server sent a bad or conflicting Content-Length")
    return int(length)
