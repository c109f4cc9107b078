"""Scripted and hostile servers for the protocol tests: a real listening socket on 127.0.0.1 (a free
port) that runs a given connection handler while a protocol module inspects it."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import random
import re
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from hostile_ftp import FakeFtp, endless_files
from hostile_hdfs import FakeNameNode, endless_statuses
from hostile_rsync import FakeRsync
from hostile_rsync import endless_files as endless_rsync_files
from hostile_s3 import FakeS3, endless_pages
from replies import (
    CASSANDRA_SUPPORTED,
    CLICKHOUSE_HTTP_ROOT,
    ETCD_VERSION,
    INFLUX_404,
    KIBANA_STANDIN_ROOT,
    MARIADB_GREETING,
    MONGODB_SECANTUS,
    OSMEM_ROOT,
    POSTGRES_TRUST,
    SMB_SAMBA,
    http_reply,
)

from leaksonar.model import ErrorKind, Identity, Inspection, Limits
from leaksonar.protocols import cassandra as cql
from leaksonar.protocols import mongodb as mongo
from leaksonar.protocols.base import Endpoint, ProtocolModule
from leaksonar.protocols.smb import PROBE as SMB_PROBE

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


@dataclass(frozen=True, slots=True)
class Reset:
    """A reply that sends `data`, then resets the connection (SO_LINGER 0: an RST, not a FIN)."""

    data: bytes


Reply = bytes | Reset | Iterator[bytes]
"""What a scripted server sends for one request: bytes (b"": hang up), a reset, or chunks made lazily
(an endless or huge answer that never exists in memory at once)."""


async def send(writer: asyncio.StreamWriter, reply: Reply) -> bool:
    """Send `reply`; False when the connection is to end."""
    if isinstance(reply, Reset):
        writer.write(reply.data)
        await writer.drain()
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        writer.transport.abort()
        return False
    if isinstance(reply, bytes):
        writer.write(reply)
        await writer.drain()
        return bool(reply)
    for chunk in reply:
        writer.write(chunk)
        await writer.drain()
    return True


def scripted(
    read: Callable[[asyncio.StreamReader], Awaitable[Request | None]],
    replies: Callable[[Request], Reply],
    verb: Callable[[Request], bytes],
    seen: list[bytes] | None = None,
    delay: float = 0.0,
) -> Handler:
    """A handler answering each request that `read` parses (None: the client is done) with
    `replies(request)` after `delay` seconds, noting each request's `verb` in `seen`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            while (request := await read(reader)) is not None:  # ValueError: another protocol's request
                if seen is not None:
                    seen.append(verb(request))
                await asyncio.sleep(delay)
                if not await send(writer, replies(request)):
                    break
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


def kinds(found: Inspection) -> list[ErrorKind]:
    """The kinds of an inspection's errors, in order."""
    return [error.kind for error in found.errors]


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


# --- a hostile network: one misbehaving server per address, all at once, for whole scans -----------


def drip(data: bytes, interval: float = 1.0) -> Handler:
    """Send `data` one byte per `interval` seconds (a tarpit)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            for byte in data:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(interval)
        writer.close()

    return handle


def repeat(chunk: bytes, total: int | None = None) -> Iterator[bytes]:
    """`chunk` again and again, about `total` bytes in all (None: forever)."""
    sent = 0
    while total is None or sent < total:
        yield chunk
        sent += len(chunk)


def nested_json(levels: int = 100_000) -> bytes:
    """A valid JSON document nested `levels` deep, beyond any recursive decoder."""
    return b'{"a":' * levels + b"1" + b"}" * levels


@functools.cache
def _gzip_member() -> bytes:
    """A gzip member of 64 MiB of zeros (about 64 KB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(compressor.compress(bytes(1 << 20)) for _ in range(64)) + compressor.flush()


def gzip_bomb(expanded: int = 4 << 30) -> Iterator[bytes]:
    """Gzip members of zeros inflating to `expanded` bytes (a thousandth of that sent), made lazily."""
    member = _gzip_member()
    return repeat(member, len(member) * (expanded >> 26))


# RESP, memcached


async def read_resp(reader: asyncio.StreamReader) -> list[bytes] | None:
    """One command (an array of bulk strings, or an inline line) as its words; None at EOF."""
    line = await reader.readline()
    if not line.startswith(b"*"):
        return line.split() or None
    words = []
    for _ in range(int(line[1:])):
        size = int((await reader.readline())[1:])
        words.append((await reader.readexactly(size + 2))[:-2])
    return words


def redis(answer: Callable[[list[bytes]], Reply]) -> Handler:
    """A Redis that answers PING, and any other command with `answer(command)`."""

    def reply(command: list[bytes]) -> Reply:
        return b"+PONG\r\n" if command[0].upper() == b"PING" else answer(command)

    return scripted(read_resp, reply, lambda command: command[0])


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _scan_millions(command: list[bytes]) -> Reply:
    """INFO announcing five million keys; SCAN returning all of them in one page, streamed lazily."""
    verb = command[0].upper()
    if verb == b"INFO":
        return _bulk(b"redis_version:7.0.15\r\n# Keyspace\r\ndb0:keys=5000000,expires=0\r\n")
    if verb == b"SCAN":
        pages = (
            b"".join(_bulk(b"key:%07d" % (i + j)) for j in range(1000)) for i in range(0, 5_000_000, 1000)
        )
        return itertools.chain([b"*2\r\n$1\r\n1\r\n*5000000\r\n"], pages)
    return b"+OK\r\n"


def memcached(answer: Callable[[bytes], Reply]) -> Handler:
    """A memcached that answers `version`, and any other command with `answer(line)`."""

    async def read(reader: asyncio.StreamReader) -> bytes | None:
        return (await reader.readline()).rstrip(b"\r\n") or None

    def reply(line: bytes) -> Reply:
        return b"VERSION 1.6.18\r\n" if line == b"version" else answer(line)

    return scripted(read, reply, lambda line: line.split()[0])


# MongoDB, Cassandra (binary frames)


async def read_mongo(reader: asyncio.StreamReader) -> tuple[int, int, bytes] | None:
    """(requestID, opCode, body) of one message; None at EOF."""
    header = await reader.read(16)
    if len(header) < 16:
        return None
    length, request_id, _, opcode = struct.unpack("<iiii", header)
    return request_id, opcode, await reader.readexactly(length - 16)


_MONGO_PROBE = struct.unpack_from("<i", mongo.PROTOCOL.probe, 4)[0], mongo.OP_QUERY
"""requestID and opCode of the identification probe."""


def mongodb(answer: Callable[[int], Reply]) -> Handler:
    """A MongoDB that answers the identification probe (OP_QUERY isMaster) like a real one, and every
    OP_MSG with `answer(request_id)`."""

    def reply(message: tuple[int, int, bytes]) -> Reply:
        request_id, opcode, _ = message
        return MONGODB_SECANTUS if (request_id, opcode) == _MONGO_PROBE else answer(request_id)

    return scripted(read_mongo, reply, lambda message: b"op%d" % message[1])


def mongo_reply(request_id: int, body: bytes, length: int | None = None) -> bytes:
    return struct.pack("<iiii", length or 16 + len(body), 99, request_id, mongo.OP_MSG) + body


async def read_cql(reader: asyncio.StreamReader) -> tuple[int, int, bytes] | None:
    """(stream, opcode, body) of one request frame; None at EOF."""
    header = await reader.read(cql.HEADER.size)
    if len(header) < cql.HEADER.size:
        return None
    _, _, stream, opcode, length = cql.HEADER.unpack(header)
    return stream, opcode, await reader.readexactly(length)


def _cassandra_reply(frame: tuple[int, int, bytes]) -> Reply:
    """SUPPORTED to OPTIONS, READY to STARTUP, then a RESULT whose body is nonsense."""
    stream, opcode, _ = frame
    if opcode == cql.OPTIONS:
        return CASSANDRA_SUPPORTED[:2] + struct.pack(">h", stream) + CASSANDRA_SUPPORTED[4:]
    if opcode == cql.STARTUP:
        return cql.HEADER.pack(0x84, 0, stream, cql.READY, 0)
    body = b"\x00\x00\x00\x02\x00\x00\x00\x01\xff\xff\xff\x7f" + b"\xfe" * 40
    return cql.HEADER.pack(0x84, 0, stream, cql.RESULT, len(body)) + body


# HTTP


def http(answer: Callable[[str], Reply], fixed: Mapping[str, bytes]) -> Handler:
    """An HTTP server that answers the targets of `fixed` as it says (what identification reads), and
    any other target with `answer(target)`."""

    def reply(request: tuple[str, str, bytes]) -> Reply:
        return fixed[request[1]] if request[1] in fixed else answer(request[1])

    return scripted(read_http, reply, lambda request: request[1].encode())


def _head(status: str, *headers: str) -> bytes:
    return f"HTTP/1.1 {status}\r\n".encode() + b"".join(h.encode() + b"\r\n" for h in headers) + b"\r\n"


_TEN_GB = _head("200 OK", "Content-Type: application/json", f"Content-Length: {10 << 30}")
_CHUNKED = _head("200 OK", "Content-Type: application/json", "Transfer-Encoding: chunked")
_INFLUX = "X-Influxdb-Version: 1.8.10"
_REGISTRY_API = {"Docker-Distribution-Api-Version": "registry/2.0", "Content-Type": "application/json"}
_GZIP = _head("200 OK", "Content-Encoding: gzip", _INFLUX, "Connection: close")


def ten_gb(_: str) -> Reply:
    return itertools.chain([_TEN_GB], repeat(b"[" * 65536))


def _endless_chunks(_: str) -> Reply:
    return itertools.chain([_CHUNKED], repeat(b"4000\r\n" + b"[" * 0x4000 + b"\r\n"))


_COUCHDB_ROOT = http_reply(
    200,
    {"Server": "CouchDB/3.3.3 (Erlang OTP/24)", "Content-Type": "application/json"},
    {"couchdb": "Welcome", "version": "3.3.3"},
)


def _endless_catalog(target: str) -> Reply:
    """Registry catalog pages of 100 new names each, every one linking to the next."""
    page = int(target.rsplit("last=r", 1)[-1]) if "last=r" in target else 0
    names = [f"r{page * 100 + i}" for i in range(1, 101)] if "_catalog" in target else []
    link = f'</v2/_catalog?n=100&last=r{page + 1}>; rel="next"'
    return http_reply(200, {**_REGISTRY_API, "Link": link}, {"repositories": names, "tags": []})


def _nested(_: str) -> Reply:
    body = nested_json()
    return _head("200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}") + body


def _influx(target: str) -> Reply:
    if target.startswith("/ping"):
        return _head("204 No Content", _INFLUX, "Content-Length: 0")
    return itertools.chain([_GZIP], gzip_bomb())


def _generic_reset() -> Handler:
    """A web server whose `/` starts a 200 and resets the connection a moment later."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            if await read_http(reader) is not None:
                writer.write(_head("200 OK", "Server: nginx/1.22.1", "Content-Length: 100000") + b"<html>")
                await asyncio.sleep(0.3)
                await send(writer, Reset(b"<title>half"))
                return
        writer.close()

    return handle


# PostgreSQL, MySQL (logins accepted, then enormous answers)


def _pg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


_PG_TEXT_COLUMN = _pg(b"T", b"\x00\x01x\x00" + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0))


def _pg_rows(huge: bool) -> Iterator[bytes]:
    """One DataRow announcing 2 GB (then its bytes, endlessly), or endless small DataRows."""
    if huge:
        return itertools.chain([b"D\x7f\xff\xff\xf0\x00\x01\x7f\xff\xff\xe0"], repeat(b"a" * 65536))
    return repeat(_pg(b"D", b"\x00\x01\x00\x00\x00\x10" + b"a" * 16) * 2000)


def postgres(huge_row: bool) -> Handler:
    """A PostgreSQL that logs anyone in (trust) and answers every query with `_pg_rows(huge_row)`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big") - 4)
            writer.write(POSTGRES_TRUST)
            while (kind := await reader.read(1)) not in (b"", b"X"):
                body = await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big") - 4)
                if kind == b"P":
                    params = len(set(re.findall(rb"\$\d+", body)))
                    writer.write(b"1\x00\x00\x00\x04")
                    writer.write(_pg(b"t", struct.pack("!h", params) + struct.pack("!I", 20) * params))
                elif kind == b"D":
                    writer.write(_PG_TEXT_COLUMN)
                elif kind == b"B":
                    writer.write(b"2\x00\x00\x00\x04")
                elif kind in (b"E", b"Q"):
                    await send(writer, _pg_rows(huge_row))
                elif kind == b"S":
                    writer.write(b"Z\x00\x00\x00\x05I")
                await writer.drain()
        writer.close()

    return handle


_PG_SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"


def postgres_tls(tls: Callable[[], ssl.SSLContext] | None, after_yes: Handler | None = None) -> Handler:
    """A PostgreSQL that lets anyone in (trust) and answers an SSLRequest with S, then speaks TLS with
    `tls()` (None: answers N and stays plaintext); or answers S and hands the connection to `after_yes`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            first = await reader.readexactly(8)
            if first == _PG_SSL_REQUEST:
                writer.write(b"S" if tls or after_yes else b"N")
                await writer.drain()
                if after_yes is not None:
                    await after_yes(reader, writer)
                    return
                if tls is not None:
                    await writer.start_tls(tls())
                first = await reader.readexactly(8)
            await reader.readexactly(int.from_bytes(first[:4], "big") - 8)
            writer.write(POSTGRES_TRUST)
            await reader.read()
        writer.close()

    return handle


MARIADB_GREETING_TLS = MARIADB_GREETING.replace(b"\xfe\xf7\x08", b"\xfe\xff\x08", 1)
"""The captured MariaDB greeting with CLIENT_SSL among its capabilities."""


def mysql_tls(tls: Callable[[], ssl.SSLContext] | None) -> Handler:
    """A MariaDB whose greeting offers TLS, upgrading on an SSLRequest with `tls()` (None: never answers
    it: a handshake that never starts)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            writer.write(MARIADB_GREETING_TLS)
            header = await reader.readexactly(4)
            await reader.readexactly(int.from_bytes(header[:3], "little"))
            if tls is not None:
                await _handshake_after(reader, writer, tls())
            await reader.read()
        writer.close()

    return handle


async def _handshake_after(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tls: ssl.SSLContext
) -> None:
    """The server's side of a TLS handshake whose ClientHello may already sit in `reader`'s buffer (MySQL's
    client sends it right after its SSLRequest, with no answer to wait for; `writer.start_tls` would miss
    bytes the stream read ahead, as a server reading exact packets never does)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    session = tls.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            session.do_handshake()
            break
        except ssl.SSLWantReadError:
            writer.write(outgoing.read())
            if not (data := await reader.read(65536)):
                return
            incoming.write(data)
    writer.write(outgoing.read())


def _my(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


def _lenenc(data: bytes) -> bytes:
    return bytes([len(data)]) + data


_MY_OK = b"\x00\x00\x00\x02\x00\x00\x00"
_MY_EOF = b"\xfe\x00\x00\x02\x00"
_MY_COLUMN = (
    b"".join(_lenenc(p) for p in (b"def", b"", b"", b"", b"x", b""))
    + b"\x0c\x21\x00"
    + (b"\x00\x01\x00\x00\xfd\x00\x00\x00\x00\x00")
)


def _my_rows() -> Iterator[bytes]:
    """A result set of one column and endless rows."""
    yield _my(1, b"\x01") + _my(2, _MY_COLUMN) + _my(3, _MY_EOF)
    seq = 4
    while True:
        batch = [_my(seq + i, _lenenc(b"r" * 60)) for i in range(1000)]
        seq += 1000
        yield b"".join(batch)


def mysql(garbage: bool) -> Handler:
    """A MySQL that lets root in with the empty password, accepts SET, and answers any other query with
    an endless result set (or, `garbage`, with a packet of no meaning out of sequence)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            writer.write(MARIADB_GREETING)
            await reader.readexactly(int.from_bytes(await reader.readexactly(4), "little") & 0xFFFFFF)
            writer.write(_my(2, _MY_OK))
            while header := await reader.read(4):
                payload = await reader.readexactly(int.from_bytes(header[:3], "little"))
                if payload[:1] != b"\x03":  # COM_QUIT or another command
                    break
                if payload[1:4].upper() == b"SET":
                    await send(writer, _my(1, _MY_OK))
                else:
                    await send(writer, _my(5, b"\x07\xff\xfe\x00garbage") if garbage else _my_rows())
        writer.close()

    return handle


# TLS: raw records where a TLS library would not misbehave, a real handshake where it must succeed


def _record(kind: int, body: bytes) -> bytes:
    return bytes([kind, 3, 3]) + len(body).to_bytes(2, "big") + body


def _handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


SERVER_HELLO = _record(
    0x16, _handshake(2, b"\x03\x03" + bytes(32) + b"\x00\xc0\x2f\x00" + b"\x00\x05\xff\x01\x00\x01\x00")
)
"""A TLS 1.2 ServerHello (ECDHE-RSA-AES128-GCM-SHA256, secure renegotiation: OpenSSL 3 refuses a hello
without it before reading on): what comes next decides."""
_CERTIFICATE_16MB = _record(0x16, b"\x0b\xff\xff\xfc\xff\xff\xf9")
"""The start of a Certificate message announcing a 16 MB chain (its bytes follow in records)."""
_WARNING_ALERT = _record(0x15, b"\x01\x70")
"""A warning alert (unrecognized_name): harmless alone."""


def after_client_hello(then: Handler) -> Handler:
    """A server that reads a TLS ClientHello and goes on with `then`; it hangs up on anything else."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            header = await reader.readexactly(5)
            if header[0] == 0x16:
                await reader.readexactly(int.from_bytes(header[3:], "big"))
                await then(reader, writer)
        writer.close()

    return handle


async def _huge_certificate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A ServerHello, then a Certificate message of 16 MB, in records of 16 KB."""
    await send(
        writer,
        itertools.chain([SERVER_HELLO, _CERTIFICATE_16MB], repeat(_record(0x16, bytes(16384)), 16 << 20)),
    )
    await reader.read()


@functools.cache
def huge_chain_context() -> ssl.SSLContext:
    """A real TLS server context presenting a leaf and about 5 MB of chain (a 20 KB certificate, 250
    times)."""
    from certs import make  # cryptography's key generation: only for the TLS servers

    bulky = make("bulky.example.lab", *(f"n{i}.bulky.example.lab" for i in range(1000)))
    return make("chain.example.lab").server_context(chain=[bulky] * 250)


@functools.cache
def tls_context() -> ssl.SSLContext:
    from certs import make

    return make("endless.example.lab").server_context()


async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Once connected (over TLS: once the handshake is done), send 256 MB: endless to a client that
    keeps a few KB (a dead TLS connection's writes raise nothing, hence the end)."""
    with contextlib.suppress(ConnectionError):
        await send(writer, repeat(b"\x17" * 65536, 256 << 20))
    writer.close()


@dataclass(frozen=True, slots=True)
class HostileServer:
    name: str
    protocol: str
    """What the scan identifies it as ("unknown": nothing)."""
    port: int
    """Its protocol's usual port, where the scan's probe plan starts with that protocol's probe."""
    handler: Handler
    expect: ErrorKind
    """The kind of one of its finding's errors."""
    tls: Callable[[], ssl.SSLContext] | None = None
    """The server's TLS context (None: the handler speaks on the bare connection)."""


async def _smb_huge_message(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Samba's answer to identification's NEGOTIATE; to any other request, a message announced at 4 GB."""
    request = await reader.read(4096)
    writer.write(SMB_SAMBA if request == SMB_PROBE else b"\xff\xff\xff\xf0" + b"\xfeSMB" * 1000)
    await writer.drain()
    await reader.read()
    writer.close()


NETWORK: tuple[HostileServer, ...] = (
    HostileServer("silent", "unknown", 6379, silent, ErrorKind.TIMEOUT),
    HostileServer(
        "drip",
        "unknown",
        3306,
        drip(MARIADB_GREETING),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer(
        "redis-huge-bulk",
        "redis",
        6379,
        redis(lambda _: b"$9999999999\r\n"),
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(
        "redis-scan-millions",
        "redis",
        6379,
        redis(_scan_millions),
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(
        "redis-malformed", "redis", 6379, redis(lambda _: b"!\x00\xffgarbage\r\n"), ErrorKind.PROTOCOL_ERROR
    ),
    HostileServer(
        "redis-reset",
        "redis",
        6379,
        redis(lambda _: Reset(b"$1000\r\nhalf")),
        ErrorKind.REFUSED,
    ),
    HostileServer(
        "memcached-malformed",
        "memcached",
        11211,
        memcached(lambda _: b"STAT\x00\xff\r\nEND\r\n"),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer(
        "mongodb-2gb",
        "mongodb",
        27017,
        mongodb(lambda rid: mongo_reply(rid, bytes(64), 0x7FFFFFFF)),
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(
        "mongodb-malformed",
        "mongodb",
        27017,
        mongodb(lambda rid: mongo_reply(rid, b"\0\0\0\0\0\x14\0\0\0\x02x\0" + b"\xff" * 12 + b"\0")),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer(
        "postgres-huge-row",
        "postgresql",
        5432,
        postgres(huge_row=True),
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(
        "postgres-endless-rows",
        "postgresql",
        5432,
        postgres(huge_row=False),
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(
        "mysql-endless-rows",
        "mysql",
        3306,
        mysql(garbage=False),
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(
        "mysql-malformed",
        "mysql",
        3306,
        mysql(garbage=True),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer(
        "cassandra-malformed",
        "cassandra",
        9042,
        scripted(read_cql, _cassandra_reply, lambda f: b"op%d" % f[1]),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer(
        "clickhouse-10gb",
        "clickhouse",
        8123,
        http(ten_gb, {"/": CLICKHOUSE_HTTP_ROOT}),
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(
        "elasticsearch-nested",
        "elasticsearch",
        9200,
        http(_nested, {"/": OSMEM_ROOT}),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer(
        "kibana-endless-chunks",
        "kibana",
        5601,
        http(_endless_chunks, {"/": KIBANA_STANDIN_ROOT}),
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(
        "couchdb-nested",
        "couchdb",
        5984,
        http(_nested, {"/": _COUCHDB_ROOT}),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer(
        "etcd-nested",
        "etcd",
        2379,
        http(_nested, {"/version": ETCD_VERSION}),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer(
        "influxdb-gzip-bomb",
        "influxdb",
        8086,
        http(_influx, {"/": INFLUX_404}),
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer("http-10gb", "http", 8080, http(ten_gb, {}), ErrorKind.OVER_LIMIT),
    HostileServer(
        "registry-endless-catalog", "docker-registry", 5000, http(_endless_catalog, {}), ErrorKind.OVER_LIMIT
    ),
    HostileServer(  # were the other address its PASV names followed, the listing would be refused
        "ftp-endless-listing",
        "ftp",
        21,
        FakeFtp(listing=endless_files, pasv_address="127.0.0.2").handle,
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(  # were the DataNode its OPEN redirects to contacted, the heads would be read
        "hdfs-endless-listing",
        "hdfs",
        9870,
        FakeNameNode(listing=endless_statuses, datanode="127.0.0.2:9864").handle,
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(
        "s3-endless-bucket",
        "s3",
        9000,
        FakeS3({"b": {}}, answer=endless_pages).handle,
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer(
        "rsync-endless-listing",
        "rsync",
        873,
        FakeRsync({"backups": {}}, listing=endless_rsync_files).handle,
        ErrorKind.OVER_LIMIT,
    ),
    HostileServer("smb-huge-message", "smb", 445, _smb_huge_message, ErrorKind.OVER_LIMIT),
    HostileServer(
        "http-reset",
        "http",
        8000,
        _generic_reset(),
        ErrorKind.REFUSED,
    ),
)
"""The hostile servers of a whole-scan test, each on an address of its own at its protocol's port, with
the kind of error its finding must show."""

TLS_NETWORK: tuple[HostileServer, ...] = (
    HostileServer("tls-silent", "unknown", 443, silent, ErrorKind.TIMEOUT),
    HostileServer("tls-drip", "unknown", 443, after_client_hello(drip(SERVER_HELLO, 0.5)), ErrorKind.TIMEOUT),
    HostileServer(
        "tls-garbage-after-hello",
        "unknown",
        443,
        after_client_hello(sends(SERVER_HELLO + b"\xde\xad\xbe\xef" * 4096)),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer(
        "tls-alert-storm",
        "unknown",
        443,
        after_client_hello(sends(_WARNING_ALERT * 500)),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer(
        "tls-16mb-certificate",
        "unknown",
        443,
        after_client_hello(_huge_certificate),
        ErrorKind.PROTOCOL_ERROR,
    ),
    HostileServer("tls-5mb-chain", "unknown", 443, silent, ErrorKind.PROTOCOL_ERROR, huge_chain_context),
    HostileServer("tls-endless", "unknown", 443, endless, ErrorKind.PROTOCOL_ERROR, tls_context),
)
"""Hostile TLS servers, for a whole scan: handshakes that never end, floods and garbage inside them, and a
completed handshake followed by an endless stream."""


def relay_to(ip: str, port: int, delay: float = 0.0) -> Handler:
    """Each connection relayed to `ip`:`port` (of 127.0.0.0/8), opened only after `delay` seconds: under
    a TLS server, a TLS terminator in front of a plaintext one (as stunnel is); a late one in front of
    a TLS server answers its handshake that late."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)
        try:
            inner_reader, inner_writer = await asyncio.open_connection(ip, port)
        except OSError:
            writer.transport.abort()
            return
        await asyncio.gather(pipe(reader, inner_writer), pipe(inner_reader, writer))

    return handle


def _stoppable(handler: Handler) -> Handler:
    """`handler`, ending quietly (its connection aborted) when the network stops."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()

    return handle


@contextlib.contextmanager
def network(servers: Sequence[HostileServer] = NETWORK) -> Iterator[dict[str, Endpoint]]:
    """Run `servers` on 127.B.C.1, .2 ... (a free /24 of 127.0.0.0/8) in a thread of their own; yield
    each one's address by name."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start(prefix: str) -> list[asyncio.Server]:
        started: list[asyncio.Server] = []
        try:
            for i, server in enumerate(servers, 1):
                handler = _stoppable(server.handler)
                tls = server.tls() if server.tls else None
                started.append(await asyncio.start_server(handler, f"{prefix}.{i}", server.port, ssl=tls))
        except OSError:
            for listener in started:
                listener.close()
            raise
        return started

    async def stop(listeners: list[asyncio.Server]) -> None:
        for listener in listeners:
            listener.close()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    _gzip_member()  # made before the servers start, not while they answer
    rng = random.Random()
    for _ in range(20):
        prefix = f"127.{rng.randrange(100, 250)}.{rng.randrange(0, 256)}"
        try:
            listeners = asyncio.run_coroutine_threadsafe(start(prefix), loop).result(10)
            break
        except OSError:
            continue
    else:
        raise RuntimeError("no free /24 on loopback for the hostile network")
    try:
        yield {s.name: Endpoint(f"{prefix}.{i}", s.port) for i, s in enumerate(servers, 1)}
    finally:
        asyncio.run_coroutine_threadsafe(stop(listeners), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
