"""Redis (RESP2): recognised from PING or from its answer to an HTTP request; inspected read-only.

Inspection sends INFO, then per database SELECT, a few SCAN pages, TYPE and one bounded read per
sampled key (GETRANGE, HSCAN, LRANGE, SSCAN, ZRANGE, XRANGE), pipelined, over the connection PING
identified the server on when the scan kept it (`inspect_on`). Every reply is read by a
hand-written RESP parser that counts each byte against `Limits.max_bytes` and keeps at most a few
KiB of any one value.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any

from leaksonar.model import Auth, ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import (
    AuthRequired,
    BoundedStream,
    CommandRefused,
    Endpoint,
    ProtocolError,
    ReplyTooLarge,
)
from leaksonar.protocols.kit import (
    MAX_DEPTH,
    MAX_ITEMS,
    Learned,
    count,
    decode_value,
    run_inspection,
    text,
    value_window,
)

_MAX_LINE = 64 * 1024
_MAX_ELEMENTS = 10_000
"""Most array elements in one reply (a SCAN page or a sampled container holds far fewer)."""
_SCAN_PAGES = 4
_BULK_HEAD = re.compile(rb"\$(\d{1,9})\r\n")
"""The line that announces a value of up to 999,999,999 bytes."""


@dataclass(frozen=True, slots=True)
class ErrorReply:
    message: str


Reply = bytes | str | int | ErrorReply | list["Reply"] | None


# --- RESP ---------------------------------------------------------------------------------------


def encode(*args: bytes | str | int) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [arg if isinstance(arg, bytes) else str(arg).encode() for arg in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _integer(body: bytes) -> int:
    try:
        return int(body)
    except ValueError:
        raise ProtocolError(f"bad number {body[:20]!r} in reply") from None


class RespParser:
    """Incremental RESP2: bytes go in as they arrive (`feed`), whole replies come out. Each reply is held
    to `max_bytes` (counted as announced, before the bytes come), `_MAX_ELEMENTS` and `MAX_DEPTH`; of a
    value only the first `keep` bytes are kept, the rest dropped as it streams past, so what is held is at
    most one line or one kept value. Every byte is looked at once, whatever the pieces it arrives in, and
    a pipelined reply of many values costs one pass, not an await per value."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.keep, self.wanted = max_bytes, max_bytes, 0
        self.replies: list[Reply] = []
        self._buffer = bytearray()
        self._open: list[tuple[list[Reply], int]] = []
        """Arrays being filled, innermost last, each with the length it announced."""
        self._searched = 0
        """Bytes of a line still to come already searched for its end."""
        self._bulk: int | None = None
        """The announced size of a value whose bytes are awaited."""
        self._kept: bytes | None = None
        self._drop = 0
        """A long value's kept head, and how many bytes of its tail are still to drop (then CRLF)."""
        self._next_reply()

    def _next_reply(self) -> None:
        self._left, self._elements = self.max_bytes, _MAX_ELEMENTS

    def _spend(self, size: int, framing: int = 0) -> None:
        """Count `size` bytes, announced or received (plus `framing` bytes of CRLF), against the cap."""
        if size + framing > self._left:
            raise ReplyTooLarge(f"server announced {size} bytes, over the {self.max_bytes}-byte cap")
        self._left -= size + framing

    def _complete(self, value: Reply) -> None:
        """A value is whole: it fills its array, and a whole top-level value is a reply."""
        while self._open:
            items, size = self._open[-1]
            items.append(value)
            if len(items) < size:
                return
            self._open.pop()
            value = items
        self.replies.append(value)
        self._next_reply()

    def feed(self, data: bytes) -> None:
        """Take `data` and read replies from what is held until `wanted` are whole or the bytes run out."""
        buffer = self._buffer
        buffer += data
        at, end = 0, len(buffer)
        while len(self.replies) < self.wanted:
            if self._kept is not None:
                dropped = min(self._drop, end - at)
                at, self._drop = at + dropped, self._drop - dropped
                if self._drop or end - at < 2:
                    break
                if buffer[at : at + 2] != b"\r\n":
                    raise ProtocolError("a value was not followed by CRLF")
                value, self._kept, at = self._kept, None, at + 2
                self._complete(value)
            elif self._bulk is not None:
                size = self._bulk
                if size > self.keep:
                    if end - at < self.keep:
                        break
                    self._kept, self._drop = bytes(buffer[at : at + self.keep]), size - self.keep
                    self._bulk, at = None, at + self.keep
                    continue
                if end - at < size + 2:
                    break
                if buffer[at + size : at + size + 2] != b"\r\n":
                    raise ProtocolError("a value was not followed by CRLF")
                value, self._bulk, at = bytes(buffer[at : at + size]), None, at + size + 2
                self._complete(value)
            elif (after := self._values(buffer, at, end)) > at:
                at, self._searched = after, 0
            else:
                newline = buffer.find(b"\n", at + self._searched, at + _MAX_LINE)
                if newline < 0:
                    if end - at >= min(_MAX_LINE, max(self._left, 3)):
                        raise ReplyTooLarge(f"line longer than {min(_MAX_LINE, self._left)} bytes")
                    self._searched = end - at
                    break
                self._searched = 0
                self._spend(newline + 1 - at)
                self._header(buffer[at], bytes(buffer[at + 1 : newline]).rstrip(b"\r\n"))
                at = newline + 1
        del buffer[:at]

    def _values(self, buffer: bytearray, at: int, end: int) -> int:
        """The common case in one tight loop: values in a row, each kept whole and all its bytes here,
        read from `at` until a reply is whole or anything else comes; where reading stopped. Counted
        against the caps as `_header` and `_complete` count them."""
        left, keep, match, open_ = self._left, self.keep, _BULK_HEAD.match, self._open
        items, size = open_[-1] if open_ else (None, 0)
        while (head := match(buffer, at)) and (length := int(head[1])) <= keep:
            start = head.end()
            stop = start + length
            if stop + 2 > end:
                break
            if stop + 2 - at > left:
                raise ReplyTooLarge(f"server announced {length} bytes, over the {self.max_bytes}-byte cap")
            if buffer[stop : stop + 2] != b"\r\n":
                raise ProtocolError("a value was not followed by CRLF")
            left -= stop + 2 - at
            value, at = bytes(buffer[start:stop]), stop + 2
            if items is None or len(items) + 1 >= size:
                self._left = left
                self._complete(value)  # it fills its array or is a reply: the caller goes on
                return at
            items.append(value)
        self._left = left
        return at

    def _header(self, kind: int, body: bytes) -> None:
        """One type line: a simple value is whole at once; a bulk or an array is awaited."""
        if kind == 43:  # +
            self._complete(body.decode("utf-8", "replace"))
        elif kind == 45:  # -
            self._complete(ErrorReply(body.decode("utf-8", "replace")))
        elif kind == 58:  # :
            self._complete(_integer(body))
        elif kind == 36:  # $
            size = _integer(body)
            if size < 0:
                self._complete(None)
            else:
                self._spend(size, framing=2)
                self._bulk = size
        elif kind == 42:  # *
            self._array(_integer(body))
        else:
            raise ProtocolError(f"unexpected reply {bytes([kind]) + body[:19]!r}")

    def _array(self, size: int) -> None:
        if size < 0:
            self._complete(None)
            return
        if len(self._open) >= MAX_DEPTH:
            raise ProtocolError("reply nested too deeply")
        if size > self._elements:
            cap = _MAX_ELEMENTS
            raise ReplyTooLarge(f"server announced {size} elements, over the cap of {cap} per reply")
        self._elements -= size
        if size:
            self._open.append(([], size))
        else:
            self._complete([])

    async def read(self, stream: BoundedStream, count: int, keep: int) -> list[Reply]:
        """The next `count` replies from `stream`, keeping `keep` bytes of each value."""
        self.keep, self.wanted = keep, count
        self.feed(b"")
        while len(self.replies) < count:
            data = await stream.read_some()
            if not data:
                raise asyncio.IncompleteReadError(bytes(self._buffer), None)
            self.feed(data)
        replies, self.replies, self.wanted = self.replies[:count], self.replies[count:], 0
        return replies


class _Client:
    """A RESP connection opened on first use and dropped after a failed exchange, so the next starts clean."""

    def __init__(self, endpoint: Endpoint, limits: Limits, stream: BoundedStream | None = None) -> None:
        self.endpoint, self.limits = endpoint, limits
        self._stream = stream
        """The connection, if open (at first: one identification opened, when given)."""
        self._handed_over = stream is not None
        """Whether the connection came from identification and has carried no command yet."""
        self._parser = RespParser(limits.max_bytes)
        self.first_page: tuple[Reply, Reply] | None = None
        """The replies to SELECT 0 and the first SCAN page, sent with INFO (`_server_info`)."""

    async def call(self, *commands: bytes, keep: int) -> list[Reply]:
        """Send encoded `commands` in one write and read one bounded reply for each. A connection handed
        over by identification that the server closed after PING is replaced once by a new one."""
        handed_over, self._handed_over = self._handed_over, False
        try:
            return await self._exchange(commands, keep)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not handed_over:
                raise
        return await self._exchange(commands, keep)

    async def _exchange(self, commands: tuple[bytes, ...], keep: int) -> list[Reply]:
        """One write, its replies; a server that refused for want of a password and then hung up (as
        protected mode does) raises AuthRequired, not the hang-up."""
        if self._stream is None:
            self._stream = await BoundedStream.open(self.endpoint, self.limits)
        try:
            await self._stream.send(b"".join(commands))
            return await self._parser.read(self._stream, len(commands), keep)
        except (ConnectionError, asyncio.IncompleteReadError):
            answered = self._parser.replies
            await self.close()
            for reply in answered:
                _check_auth(reply)
            raise
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        """Drop the connection, and with it what its parser held."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            self._parser = RespParser(self.limits.max_bytes)
            await stream.close()


# --- identification -----------------------------------------------------------------------------

_AUTH_ERRORS = ("NOAUTH ", "NOPERM ", "WRONGPASS ", "ERR operation not permitted", "DENIED ")
_MATCH = re.compile(
    rb"\A(?:\+PONG\r\n"
    rb"|-(?:NOAUTH|NOPERM) "
    rb"|-ERR operation not permitted"
    rb"|-DENIED Redis is running in protected mode"
    rb"|-LOADING Redis is loading"
    rb"|-ERR wrong number of arguments for '\w+' command"
    rb"|-ERR unknown command [`'])"
)


def _is_auth_error(message: str) -> bool:
    return message.startswith(_AUTH_ERRORS)


# --- inspection ---------------------------------------------------------------------------------


_INFO_FIELDS = re.compile(
    r"^(server_name|[a-z0-9]+_version|redis_mode|role|used_memory|used_memory_dataset|db\d{1,5}):([^\r\n]*)",
    re.MULTILINE,
)
"""The INFO lines inspection reads: software, mode and role, memory, and the keyspace (one regex pass
over INFO's 180-odd lines costs half of splitting them all)."""


def parse_info(raw: bytes) -> dict[str, str]:
    """INFO's `name:value` lines that inspection reads (`_INFO_FIELDS`)."""
    return dict(_INFO_FIELDS.findall(raw.decode("utf-8", "replace")))


_DATABASE = re.compile(r"db\d{1,5}")
_KEYS = re.compile(r"keys=([^,]*)")


def keyspace(info: dict[str, str]) -> dict[int, int | None]:
    """Keys per database number, from INFO's keyspace section (`db3:keys=20,expires=0,...`); None where
    the count is not a number `count` accepts."""
    found: dict[int, int | None] = {}
    for name, value in info.items():
        if _DATABASE.fullmatch(name) and (keys := _KEYS.match(value)):
            found[int(name[2:])] = count(keys.group(1))
    return found


def _software(info: dict[str, str], limits: Limits) -> Software:
    """Redis, or a fork that names itself in `server_name` (Valkey) with its own version field (cut to
    `limits.value_chars`)."""
    name = info.get("server_name", "redis")[:40] or "redis"
    version = info.get(f"{name}_version") or info.get("redis_version")
    return Software(name, version and version[: limits.value_chars])


def _keyed(verb: bytes, *rest: bytes | int) -> Callable[[bytes], bytes]:
    """`verb key *rest` encoded for any key, what does not depend on the key encoded once."""
    head, tail = encode(verb, b"", *rest).split(b"$0\r\n\r\n", 1)
    return lambda key: b"%s$%d\r\n%s\r\n%s" % (head, len(key), key, tail)


_TYPE = _keyed(b"TYPE")
_READS = {
    "hash": _keyed(b"HSCAN", 0, b"COUNT", 20),
    "list": _keyed(b"LRANGE", 0, 4),
    "set": _keyed(b"SSCAN", 0, b"COUNT", 20),
    "zset": _keyed(b"ZRANGE", 0, 4, b"WITHSCORES"),
    "stream": _keyed(b"XRANGE", b"-", b"+", b"COUNT", 3),
}
"""The bounded read of a key of each type but string (module types are not sampled)."""


def _value_reads(limits: Limits) -> dict[str, Callable[[bytes], bytes]]:
    """The bounded read of a key, by its type: `_READS`, and the head of a string."""
    return {"string": _keyed(b"GETRANGE", 0, value_window(limits) - 1), **_READS}


def _strings(reply: Reply) -> list[bytes]:
    return [item for item in reply if isinstance(item, bytes)] if isinstance(reply, list) else []


def _page(reply: Reply) -> tuple[bytes, list[bytes]]:
    """Cursor and elements of a SCAN/HSCAN/SSCAN reply."""
    if isinstance(reply, ErrorReply):
        raise CommandRefused(reply.message)
    if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[0], bytes)):
        raise ProtocolError("malformed SCAN reply")
    return reply[0], _strings(reply[1])


def _mapping(flat: list[bytes], limits: Limits) -> dict[str, Any]:
    pairs = islice(zip(flat[::2], flat[1::2], strict=False), MAX_ITEMS)
    return {text(k, limits): decode_value(v, limits) for k, v in pairs}


def _value(kind: str, reply: Reply, limits: Limits) -> Any:
    """A sampled value as str, dict or list (JSON decoded), every string cut to `limits.value_chars`."""
    if isinstance(reply, bytes):
        return decode_value(reply, limits) if kind == "string" else None
    if not isinstance(reply, list):
        return None
    if kind in ("hash", "set"):
        items = _strings(reply[1]) if len(reply) == 2 else []
        return (
            _mapping(items, limits)
            if kind == "hash"
            else [decode_value(m, limits) for m in items[:MAX_ITEMS]]
        )
    if kind == "list":
        return [decode_value(m, limits) for m in _strings(reply)]
    if kind == "zset":
        flat = _strings(reply)
        return [[text(m, limits), text(s, limits)] for m, s in zip(flat[::2], flat[1::2], strict=False)]
    return [_mapping(_strings(e[1]), limits) for e in reply if isinstance(e, list) and len(e) == 2]


def _first_page(db: int, limits: Limits) -> tuple[bytes, bytes]:
    """SELECT `db` and its first SCAN page, which asks for just the keys sampled (Redis walks buckets
    until it has about COUNT keys, and each key returned is parsed): later pages ask for more."""
    return encode("SELECT", db), encode("SCAN", 0, "COUNT", _wanted(limits))


def _wanted(limits: Limits) -> int:
    """Keys sampled per database: a few per sampled row, as keys of one type tend to come together."""
    return limits.sample_rows * 4


async def _scan(client: _Client, db: int) -> list[bytes]:
    """Up to `_wanted` keys of database `db`, from at most a few SCAN pages (database 0's first page came
    with INFO)."""
    want = _wanted(client.limits)
    if db == 0 and client.first_page is not None:
        (select, page), client.first_page = client.first_page, None
    else:
        select, page = await client.call(*_first_page(db, client.limits), keep=_MAX_LINE)
    if isinstance(select, ErrorReply):
        raise CommandRefused(f"SELECT {db} refused: {select.message}")
    cursor, keys = _page(page)
    for _ in range(_SCAN_PAGES - 1):
        if cursor == b"0" or len(set(keys)) >= want:
            break
        (page,) = await client.call(encode("SCAN", cursor, "COUNT", 100), keep=_MAX_LINE)
        cursor, more = _page(page)
        keys += more
    return list(dict.fromkeys(keys))[:want]


async def _sample(client: _Client, db: int, limits: Limits) -> tuple[dict[str, Any], ...]:
    """One document per sampled key of database `db`: key, type and a bounded value."""
    keys = await _scan(client, db)
    if not keys:
        return ()
    types = await client.call(*map(_TYPE, keys), keep=64)
    kinds = [t if isinstance(t, str) else "unknown" for t in types]
    commands = _value_reads(limits)
    reads = [(k, kind, read(k)) for k, kind in zip(keys, kinds, strict=True) if (read := commands.get(kind))]
    replies = await client.call(*(cmd for _, _, cmd in reads), keep=value_window(limits)) if reads else []
    values = {k: _value(kind, reply, limits) for (k, kind, _), reply in zip(reads, replies, strict=True)}
    return tuple(
        {"key": text(k, limits), "type": kind, "value": values.get(k)}
        for k, kind in zip(keys, kinds, strict=True)
    )


def _check_auth(reply: Reply) -> None:
    if isinstance(reply, ErrorReply) and _is_auth_error(reply.message):
        raise AuthRequired(reply.message[:200])


async def _server_info(client: _Client, learned: Learned) -> dict[str, str] | None:
    """INFO (or DBSIZE where INFO is renamed away); AuthRequired when the server asks for a password.
    Database 0's first SCAN page goes in the same write (a round trip fewer for most servers): its keys are
    kept whole within the reply's byte cap, as INFO is."""
    first_page = _first_page(0, client.limits)
    reply, select, page = await client.call(encode("INFO"), *first_page, keep=client.limits.max_bytes)
    client.first_page = select, page
    _check_auth(reply)
    if isinstance(reply, bytes):
        learned.auth = "none"
        return parse_info(reply)
    refusal = reply.message[:200] if isinstance(reply, ErrorReply) else "not a text reply"
    learned.add(ErrorKind.COMMAND_REFUSED, f"INFO was refused: {refusal}.")
    (size,) = await client.call(encode("DBSIZE"), keep=64)
    _check_auth(size)
    if isinstance(size, int):
        learned.auth = "none"
        return {"db0": f"keys={size}"} if size else {}
    return None


async def _inspect(endpoint: Endpoint, stream: BoundedStream | None, learned: Learned) -> None:
    limits = learned.limits
    client = _Client(endpoint, limits, stream)
    try:
        info = await _server_info(client, learned)
        if info is None:
            return
        if "redis_version" in info:
            learned.software = _software(info, limits)
        learned.details.update(
            {k: info[k][: limits.value_chars] for k in ("redis_mode", "role") if k in info}
        )
        learned.size_bytes = count(info.get("used_memory_dataset")) or count(info.get("used_memory"))
        dbs = keyspace(info)
        counted = [keys for keys in dbs.values() if keys is not None]
        learned.databases, learned.rows = len(dbs), sum(counted) if counted or not dbs else None
        shown = sorted(dbs)[: min(limits.max_databases, limits.max_collections)]
        learned.capped(len(shown), len(dbs), "databases", counted=False)
        for db in shown:  # collection `db<n>` with its key count; a sample unless the server misbehaves
            await learned.add_sampled(str(db), f"db{db}", dbs[db], None, _sample(client, db, limits))
    finally:
        await client.close()


class RedisProtocol:
    name = "redis"
    default_ports = (6379, 6380, 7000)
    probe = encode("PING")

    def match(self, reply: bytes) -> Identity | None:
        """Redis's answer to PING, or to the HTTP probe's `GET /` and header lines."""
        if not _MATCH.match(reply):
            return None
        banner = reply.split(b"\r\n", 1)[0][:200].decode("utf-8", "replace")
        auth: Auth = "required" if _is_auth_error(banner[1:]) else "unknown"
        return Identity(self.name, Software("redis"), auth, banner)

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """INFO, keyspace and a bounded sample of keys per database; read-only, never raises."""
        return await _run(endpoint, None, identity, limits)


async def _run(
    endpoint: Endpoint, stream: BoundedStream | None, identity: Identity, limits: Limits
) -> Inspection:
    steps = partial(_inspect, endpoint, stream)
    return await run_inspection(PROTOCOL.name, steps, identity, limits, Software("redis"))


async def inspect_on(
    stream: BoundedStream, endpoint: Endpoint, identity: Identity, limits: Limits
) -> Inspection:
    """The inspection over `stream`, the connection on which PING identified the server (it leaves the
    connection clean); closes it. A connection dropped after a failed exchange is opened anew."""
    return await _run(endpoint, stream, identity, limits)


PROTOCOL = RedisProtocol()
