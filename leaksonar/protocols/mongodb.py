"""MongoDB: recognised from its answer to an OP_QUERY isMaster (which every MongoDB answers), inspected
read-only over OP_MSG, or over OP_QUERY for servers older than 3.6 (no valid answer to OP_MSG).

Commands sent: hello (isMaster where hello is unknown), buildInfo, listDatabases, listCollections,
collStats (count where collStats is refused) and one `find` per collection with limit = batchSize =
`Limits.sample_rows` and singleBatch (an OP_QUERY with a negative numberToReturn on old servers), so no
cursor stays open. The 4-byte messageLength of every reply is checked against `Limits.max_bytes` before
its body is read; BSON is decoded by pymongo's `bson`.

Naming: a collection is (database name, collection name). The system databases admin, local and
config, `system.*` collections and views (no data of their own) are left out of `databases`,
`collections` and `rows`. The software is what the server claims (buildInfo's version); a wire-compatible
stand-in that names itself is recorded in `details["implementation"]`.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import partial
from itertools import islice
from typing import Any

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.decimal128 import Decimal128
from bson.errors import BSONError

from leaksonar.model import Auth, Collection, ErrorKind, Identity, Inspection, Limits, Sample, Software
from leaksonar.protocols.base import (
    AuthRequired,
    BoundedStream,
    CommandRefused,
    Endpoint,
    ProtocolError,
    ReplyTooLarge,
)
from leaksonar.protocols.kit import MAX_DEPTH, MAX_ITEMS, SERVER_ERRORS, Learned, count, run_inspection

NAME = "mongodb"
OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
_HEADER = struct.Struct("<iiii")
"""messageLength, requestID, responseTo, opCode."""
_PROBE_ID = 0x4C53
_MAX_MESSAGE = 48_000_000
"""The largest message MongoDB sends (maxMessageSizeBytes)."""
_HELLO_KEYS = (b"\x08ismaster\x00", b"\x08isWritablePrimary\x00", b"\x10maxWireVersion\x00")
"""BSON elements (boolean ismaster / isWritablePrimary, int32 maxWireVersion) only a hello reply holds."""
_HTTP_NOTICE = b"It looks like you are trying to access MongoDB over HTTP on the native driver port."
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})
_AUTH_CODES = frozenset({13, 18})
"""Unauthorized, AuthenticationFailed."""
_AUTH_WORDS = ("requires authentication", "not authorized", "unauthorized", "need to login")
_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(
    unicode_decode_error_handler="replace", datetime_conversion=DatetimeConversion.DATETIME_AUTO
)
_DECODE_ERRORS = (BSONError, ValueError, OverflowError, RecursionError, struct.error)


class Refused(CommandRefused):
    """The server answered a command with ok: 0."""

    def __init__(self, command: str, reply: dict[str, Any]) -> None:
        self.code = reply.get("code")
        self.message = str(reply.get("errmsg") or reply.get("$err") or "no reason given")[:200]
        super().__init__(f"{command} was refused: {self.message}")

    @property
    def needs_auth(self) -> bool:
        return self.code in _AUTH_CODES or any(w in self.message.lower() for w in _AUTH_WORDS)


# --- messages -----------------------------------------------------------------------------------


def op_msg(request_id: int, command: dict[str, Any]) -> bytes:
    """An OP_MSG with one body section (flagBits 0)."""
    body = b"\0\0\0\0\0" + bson.encode(command)
    return _HEADER.pack(_HEADER.size + len(body), request_id, 0, OP_MSG) + body


def op_query(request_id: int, namespace: str, query: dict[str, Any], number_to_return: int) -> bytes:
    """A legacy OP_QUERY (flags 0, numberToSkip 0); a negative `number_to_return` closes the cursor."""
    body = (
        b"\0\0\0\0"
        + namespace.encode()
        + b"\0"
        + struct.pack("<ii", 0, number_to_return)
        + bson.encode(query)
    )
    return _HEADER.pack(_HEADER.size + len(body), request_id, 0, OP_QUERY) + body


def _decode(data: bytes) -> list[dict[str, Any]]:
    try:
        return bson.decode_all(data, _CODEC)
    except _DECODE_ERRORS as exc:
        raise ProtocolError(f"malformed BSON in reply ({type(exc).__name__})") from None


def _msg_body(body: bytes) -> dict[str, Any]:
    """The body section (kind 0) of an OP_MSG, after the message header."""
    flags = int.from_bytes(body[:4], "little")
    end = len(body) - 4 if flags & 1 else len(body)  # checksumPresent: a CRC-32C ends the message
    offset = 4
    while offset < end:
        kind, offset = body[offset], offset + 1
        size = int.from_bytes(body[offset : offset + 4], "little")
        if size < 5 or offset + size > end:
            break
        if kind == 0:
            return _decode(body[offset : offset + size])[0]
        offset += size
    raise ProtocolError("OP_MSG reply without a body section")


def documents(opcode: int, body: bytes) -> list[dict[str, Any]]:
    """The documents of a reply (OP_REPLY: all of them; OP_MSG: its body section)."""
    if opcode == OP_MSG:
        return [_msg_body(body)]
    if opcode == OP_REPLY and len(body) >= 20:
        return _decode(body[20:])
    raise ProtocolError(f"unexpected reply opcode {opcode}")


class _Client:
    """One MongoDB connection, opened on first use and dropped after a failed exchange."""

    def __init__(self, endpoint: Endpoint, limits: Limits) -> None:
        self.endpoint, self.limits = endpoint, limits
        self.legacy = False
        """Speak OP_QUERY: the server gave no valid answer to OP_MSG."""
        self._ids = itertools.count(1)
        self._stream: BoundedStream | None = None

    async def command(self, database: str, command: dict[str, Any]) -> dict[str, Any]:
        """Run `command` on `database`; Refused when the server answers ok: 0."""
        request_id = next(self._ids)
        if self.legacy:
            message = op_query(request_id, f"{database}.$cmd", command, -1)
        else:
            message = op_msg(request_id, {**command, "$db": database})
        replies = await self.exchange(request_id, message)
        reply = replies[0] if replies and isinstance(replies[0], dict) else {}
        if reply.get("ok") != 1 or "$err" in reply:
            raise Refused(next(iter(command)), reply)
        return reply

    async def query(self, namespace: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` documents of `namespace` by a legacy OP_QUERY that closes its cursor."""
        request_id = next(self._ids)
        replies = await self.exchange(request_id, op_query(request_id, namespace, {}, -limit))
        if replies and "$err" in replies[0]:
            raise Refused("query", replies[0])
        return replies[:limit]

    async def exchange(self, request_id: int, message: bytes) -> list[dict[str, Any]]:
        if self._stream is None:
            self._stream = await BoundedStream.open(self.endpoint, self.limits)
        try:
            await self._stream.send(message)
            return await self._read_reply(self._stream, request_id)
        except Exception:
            await self.close()
            raise

    async def _read_reply(self, stream: BoundedStream, request_id: int) -> list[dict[str, Any]]:
        length, _, response_to, opcode = _HEADER.unpack(await stream.read_exactly(_HEADER.size))
        if length > self.limits.max_bytes:
            raise ReplyTooLarge(f"server announced {length} bytes, over the {self.limits.max_bytes}-byte cap")
        if length < _HEADER.size + 5:
            raise ProtocolError(f"reply announces {length} bytes, too short for a message")
        body = await stream.read_exactly(length - _HEADER.size)
        if response_to != request_id:
            raise ProtocolError("reply answers another request")
        return documents(opcode, body)

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.close()


# --- identification -----------------------------------------------------------------------------


def probe_reply(reply: bytes) -> dict[str, Any] | None:
    """The hello document of a reply to the probe ({} when cut short by the banner cap), or None."""
    if len(reply) < _HEADER.size + 5:
        return None
    length, _, response_to, opcode = _HEADER.unpack_from(reply)
    if response_to != _PROBE_ID or opcode not in (OP_REPLY, OP_MSG) or not 21 <= length <= _MAX_MESSAGE:
        return None
    body = reply[_HEADER.size : length]
    if not any(key in body for key in _HELLO_KEYS):
        return None
    if len(reply) < length:
        return {}
    try:
        found = documents(opcode, body)
    except ProtocolError:
        return None
    return found[0] if found else None


def _banner(hello: dict[str, Any]) -> str:
    parts = ["MongoDB hello"]
    if isinstance(hello.get("maxWireVersion"), int):
        parts.append(f"maxWireVersion {hello['maxWireVersion']}")
    if hello.get("msg") == "isdbgrid":
        parts.append("mongos")
    if isinstance(hello.get("setName"), str):
        parts.append(f"replica set {hello['setName'][:60]}")
    return ", ".join(parts)


# --- inspection ---------------------------------------------------------------------------------


def plain(value: Any, limits: Limits, depth: int = 0) -> Any:
    """A BSON value as plain Python for assessment: strings cut to `limits.value_chars`, containers to
    `MAX_ITEMS` and `MAX_DEPTH`; binary data dropped, other BSON types (ObjectId ...) as text."""
    if isinstance(value, str):
        return value[: limits.value_chars]
    if isinstance(value, bool | int | float | Decimal | date) or value is None:
        return value
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {
            str(k)[: limits.value_chars]: plain(v, limits, depth + 1)
            for k, v in islice(value.items(), MAX_ITEMS)
        }
    if isinstance(value, list):
        return [plain(v, limits, depth + 1) for v in value[:MAX_ITEMS]]
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, bytes):
        return None
    return str(value)[: limits.value_chars]


@dataclass(frozen=True, slots=True)
class _Entry:
    database: str
    name: str


async def _hello(client: _Client) -> dict[str, Any]:
    """hello over OP_MSG (isMaster before MongoDB 4.4.2); isMaster over OP_QUERY when OP_MSG gets no
    valid answer (before 3.6)."""
    try:
        return await client.command("admin", {"hello": 1})
    except Refused:
        return await client.command("admin", {"isMaster": 1})
    except (ProtocolError, OSError, EOFError, TimeoutError):
        client.legacy = True
        return await client.command("admin", {"isMaster": 1})


def _implementation(build: dict[str, Any]) -> str | None:
    """The wire-compatible stand-in that names itself in buildInfo."""
    if isinstance(build.get("secantusVersion"), str):
        return f"SecantusDB {build['secantusVersion'][:40]}"
    if build.get("process") == "nx_27017":
        return "NX-27017"
    return None


async def _server(client: _Client, learned: Learned) -> None:
    """hello and buildInfo: the version claimed, the topology and any self-naming stand-in."""
    hello = await _hello(client)
    details = learned.details
    if isinstance(hello.get("maxWireVersion"), int):
        details["max_wire_version"] = hello["maxWireVersion"]
    if client.legacy:
        details["wire_protocol"] = "OP_QUERY"
    if hello.get("msg") == "isdbgrid":
        details["topology"] = "mongos"
    elif isinstance(hello.get("setName"), str):
        details["topology"] = f"replica set {hello['setName'][:60]}"
    try:
        build = await client.command("admin", {"buildInfo": 1})
    except Refused as refused:
        if not refused.needs_auth:
            learned.add(ErrorKind.COMMAND_REFUSED, f"{refused}.")
        return
    version = build.get("version")
    learned.software = Software(NAME, version[:40] if isinstance(version, str) else None)
    if implementation := _implementation(build):
        details["implementation"] = implementation


async def _databases(client: _Client, learned: Learned) -> list[dict[str, Any]] | None:
    """listDatabases' user databases; None when the server refuses (AuthRequired: for want of a password)."""
    try:
        reply = await client.command("admin", {"listDatabases": 1, "nameOnly": False})
    except Refused as refused:
        if refused.needs_auth:
            raise AuthRequired(refused.message) from refused
        learned.add(ErrorKind.COMMAND_REFUSED, f"{refused}.")
        return None
    learned.auth = "none"
    listed = reply.get("databases")
    found = (
        [d for d in listed if isinstance(d, dict) and isinstance(d.get("name"), str)]
        if isinstance(listed, list)
        else []
    )
    return sorted((d for d in found if d["name"] not in SYSTEM_DATABASES), key=lambda d: d["name"])


async def _collections(client: _Client, database: str, room: int) -> tuple[list[str], bool]:
    """Names of the data collections of `database` (at most `room`), and whether more were listed."""
    reply = await client.command(database, {"listCollections": 1, "cursor": {"batchSize": room + 1}})
    cursor = reply.get("cursor")
    batch = cursor.get("firstBatch") if isinstance(cursor, dict) else None
    names = sorted(
        entry["name"]
        for entry in (batch if isinstance(batch, list) else [])
        if isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and entry.get("type", "collection") in ("collection", "timeseries")
        and not entry["name"].startswith("system.")
    )
    more = len(names) > room or (isinstance(cursor, dict) and cursor.get("id") not in (0, None))
    return names[:room], more


async def _measure(client: _Client, entry: _Entry) -> tuple[int | None, int | None]:
    """The server's own document count and data size of one collection."""
    try:
        stats = await client.command(entry.database, {"collStats": entry.name})
        return count(stats.get("count")), count(stats.get("size"))
    except Refused:
        counted = await client.command(entry.database, {"count": entry.name})
        return count(counted.get("n")), None


async def _sample(client: _Client, entry: _Entry, limits: Limits) -> list[dict[str, Any]]:
    """At most `limits.sample_rows` documents, in one reply, leaving no cursor open."""
    if client.legacy:
        return await client.query(f"{entry.database}.{entry.name}", limits.sample_rows)
    n = limits.sample_rows
    reply = await client.command(
        entry.database,
        {
            "find": entry.name,
            "limit": n,
            "batchSize": n,
            "singleBatch": True,
            "maxTimeMS": int(limits.timeout * 1000),
        },
    )
    cursor = reply.get("cursor")
    batch = cursor.get("firstBatch") if isinstance(cursor, dict) else None
    return [d for d in batch if isinstance(d, dict)][:n] if isinstance(batch, list) else []


async def _collection(client: _Client, entry: _Entry, learned: Learned) -> None:
    """One collection: counts, and a sample unless the server misbehaves (then an error)."""
    where, limits = f"{entry.database}.{entry.name}", learned.limits
    rows = size = None
    try:
        rows, size = await _measure(client, entry)
    except SERVER_ERRORS as exc:
        learned.failed(f"Counting {where}", exc)
    found: list[dict[str, Any]] = []
    if limits.sample_rows > 0:
        try:
            found = [plain(d, limits) for d in await _sample(client, entry, limits)]
        except SERVER_ERRORS as exc:
            learned.failed(f"Sampling {where}", exc)
    fields = tuple(sorted({key for doc in found for key in doc}))
    learned.collections.append(Collection(entry.database, entry.name, rows, size, fields))
    if found:
        learned.samples.append(Sample(entry.database, entry.name, tuple(found)))


async def _entries(client: _Client, names: list[str], learned: Learned) -> list[_Entry]:
    """The collections to inspect, within `max_collections`; listing failures become errors."""
    limits = learned.limits
    entries: list[_Entry] = []
    for database in names:
        room = limits.max_collections - len(entries)
        if room <= 0:
            learned.left_out(f"Only the first {limits.max_collections} collections were inspected.")
            break
        try:
            found, more = await _collections(client, database, room)
        except SERVER_ERRORS as exc:
            learned.failed(f"Listing the collections of {database}", exc)
            continue
        entries += [_Entry(database, name) for name in found]
        if more:
            learned.left_out(f"Only the first {len(found)} collections of {database} were inspected.")
    return entries


def _size(databases: list[dict[str, Any]], collections: list[Collection]) -> int | None:
    """The user databases' size on disk, or (where the server reports none) their collections' size."""
    on_disk = sum(count(d.get("sizeOnDisk")) or 0 for d in databases)
    if on_disk:
        return on_disk
    sizes = [c.size_bytes for c in collections if c.size_bytes is not None]
    return sum(sizes) if sizes else None


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    limits = learned.limits
    client = _Client(endpoint, limits)
    try:
        await _server(client, learned)
        databases = await _databases(client, learned)
        if databases is None:
            return
        learned.databases = len(databases)
        shown = [d["name"] for d in databases[: limits.max_databases]]
        learned.capped(len(shown), len(databases), "databases")
        for entry in await _entries(client, shown, learned):
            await _collection(client, entry, learned)
        learned.rows = sum(c.rows for c in learned.collections if c.rows is not None)
        learned.size_bytes = _size(databases, learned.collections)
    finally:
        await client.close()


class MongoProtocol:
    name = NAME
    default_ports = (27017, 27018)
    probe = op_query(_PROBE_ID, "admin.$cmd", {"isMaster": 1}, -1)

    def match(self, reply: bytes) -> Identity | None:
        """A reply to the OP_QUERY isMaster probe, or MongoDB's notice to an HTTP request."""
        if reply.startswith(b"HTTP/1.") and _HTTP_NOTICE in reply:
            return Identity(self.name, Software(NAME), "unknown", _HTTP_NOTICE.decode())
        hello = probe_reply(reply)
        if hello is None:
            return None
        auth: Auth = "required" if hello.get("accessControlEnabled") is True else "unknown"
        return Identity(self.name, Software(NAME), auth, _banner(hello))

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Databases, collections with the server's counts, and a bounded sample; read-only, never raises."""
        return await run_inspection(self.name, partial(_inspect, endpoint), identity, limits, Software(NAME))


PROTOCOL = MongoProtocol()
