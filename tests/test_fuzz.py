"""Fuzzing of every protocol parser: any bytes, or real replies mutated, give a result or a recorded
error, never an unhandled exception, and within the limits' time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import hostile
import pytest
import replies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaksonar.model import Identity, Inspection, Limits
from leaksonar.protocols import BY_NAME, PROTOCOLS, clickhouse, mongodb, postgres, redis
from leaksonar.protocols import cassandra as cql
from leaksonar.protocols.base import BoundedStream, ProtocolError, ProtocolModule
from leaksonar.protocols.kit import SERVER_ERRORS
from leaksonar.scan.identify import match

FUZZ = settings(max_examples=100, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
SERVED = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = Limits(timeout=0.5, service_budget=2.0, max_bytes=64 * 1024)

REAL_REPLIES = [
    value for name, value in sorted(vars(replies).items()) if name.isupper() and isinstance(value, bytes)
]
"""Every captured reply of tests/replies.py: seeds for mutation."""


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """One of `seeds` with a few bytes flipped, cut, inserted or repeated."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "cut", "insert", "repeat"]))
        if operation == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif operation == "cut":
            del data[at:]
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))] * draw(st.integers(1, 8))
    return bytes(data)


def replies_of(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=2048), mutated(seeds))


# --- identification -------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.name)
@FUZZ
@given(reply=replies_of(REAL_REPLIES))
def test_match_takes_any_bytes(protocol: ProtocolModule, reply: bytes) -> None:
    found = protocol.match(reply)
    assert found is None or found.protocol == protocol.name


@FUZZ
@given(reply=replies_of([*REAL_REPLIES, replies.http_reply(200, {}, hostile.nested_json(5000))]))
def test_identification_takes_any_reply(reply: bytes) -> None:
    found = match(reply)
    assert found is None or found.protocol in BY_NAME


# --- frame and reply readers, fed directly ---------------------------------------------------------


async def feed(data: bytes, read: Callable[[BoundedStream], Awaitable[Any]]) -> Any:
    """`read` on a stream holding `data`, then EOF."""
    reader = asyncio.StreamReader(limit=64 * 1024)
    reader.feed_data(data)
    reader.feed_eof()
    return await read(BoundedStream(reader, None, LIMITS))  # type: ignore[arg-type]  # reads only


READ_ERRORS = (*SERVER_ERRORS, asyncio.IncompleteReadError)


def resp_replies() -> st.SearchStrategy[bytes]:
    seeds = [redis.encode("a", "b"), b"*2\r\n$1\r\n0\r\n*1\r\n$3\r\nkey\r\n", b"$5\r\nhello\r\n", b":42\r\n"]
    return replies_of([*seeds, replies.REDIS_PONG, replies.REDIS_NOAUTH])


@FUZZ
@given(data=resp_replies())
def test_resp_reader(data: bytes) -> None:
    with contextlib.suppress(READ_ERRORS):
        asyncio.run(feed(data, lambda stream: redis.RespParser(LIMITS.max_bytes).read(stream, 1, keep=64)))


@FUZZ
@given(data=replies_of([replies.CASSANDRA_SUPPORTED, replies.CASSANDRA_HTTP_PROBE_ERROR]))
def test_cql_frame_reader(data: bytes) -> None:
    try:
        frame = asyncio.run(feed(data, cql.read_frame))
    except READ_ERRORS:
        return
    with contextlib.suppress(ProtocolError):
        list(cql.records(cql.parse_rows(frame.body), LIMITS))


@FUZZ
@given(data=st.binary(max_size=512))
def test_cql_rows_parser(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        list(cql.records(cql.parse_rows(struct.pack(">i", 2) + data), LIMITS))


@FUZZ
@given(
    opcode=st.sampled_from([mongodb.OP_MSG, mongodb.OP_REPLY, 0]),
    body=replies_of([replies.MONGODB_SECANTUS[16:], replies.MONGODB_NX[16:]]),
)
def test_bson_reader(opcode: int, body: bytes) -> None:
    try:
        for document in mongodb.documents(opcode, body):
            mongodb.plain(document, LIMITS)
    except ProtocolError:
        pass


@FUZZ
@given(data=replies_of([replies.CLICKHOUSE_NATIVE_HELLO]))
def test_clickhouse_hello_reader(data: bytes) -> None:
    async def hello(stream: BoundedStream) -> list[str]:
        return [await clickhouse.read_string(stream) for _ in range(3)]

    with contextlib.suppress(READ_ERRORS):
        asyncio.run(feed(data[1:], hello))


@FUZZ
@given(data=replies_of([replies.POSTGRES_TRUST, replies.POSTGRES_SCRAM, replies.POSTGRES_NO_HBA_ENTRY]))
def test_postgres_message_splitter(data: bytes) -> None:
    for kind, body in postgres._messages(data):
        assert len(kind) == 1 and len(body) <= len(data)


# --- whole inspections against servers that answer with fuzz ---------------------------------------

JSON_KEYS = st.sampled_from(
    ["version", "number", "couchdb", "rows", "total_rows", "doc_count", "docs", "index", "docs.count",
     "store.size", "results", "series", "values", "columns", "name", "kvs", "count", "key", "value",
     "userCtx", "roles", "hits", "_source", "mappings", "properties", "data", "meta", "status", "overall",
     "error", "etcdserver", "etcdcluster", "header", "more", "cluster_name", "tagline", "sizes"]
)  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(JSON_KEYS | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=25,
)
HTTP_BODIES = st.one_of(JSON.map(lambda doc: json.dumps(doc).encode()), st.binary(max_size=256))


Read = Callable[[asyncio.StreamReader], Awaitable[object]]


def answers_once(read: Read, data: bytes) -> hostile.Handler:
    """Each connection: read one request, answer `data`, hang up (the client is never left waiting)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            await read(reader)
            writer.write(data)
            await writer.drain()
        writer.close()

    return handle


async def read_startup(reader: asyncio.StreamReader) -> bytes:
    return await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big") - 4)


async def read_line(reader: asyncio.StreamReader) -> bytes:
    return await reader.readline()


async def nothing(_: asyncio.StreamReader) -> None:
    """The server speaks first."""


BINARY: dict[str, tuple[Read, list[bytes]]] = {
    "redis": (hostile.read_resp, [b"$20\r\nredis_version:7.0.1\r\n\r\n", replies.REDIS_NOAUTH]),
    "memcached": (read_line, [b"STAT pid 1\r\nSTAT version 1.6\r\nSTAT curr_items 2\r\nEND\r\n"]),
    "mongodb": (hostile.read_mongo, [replies.MONGODB_SECANTUS, replies.MONGODB_NX]),
    "postgresql": (
        read_startup,
        [replies.POSTGRES_TRUST, replies.POSTGRES_MD5, replies.POSTGRES_NO_HBA_ENTRY],
    ),
    "mysql": (nothing, [replies.MARIADB_GREETING, replies.HOST_NOT_ALLOWED]),
    "cassandra": (hostile.read_cql, [replies.CASSANDRA_SUPPORTED, cql.frame(cql.READY)]),
}
HTTP = ["elasticsearch", "kibana", "couchdb", "clickhouse", "etcd", "influxdb", "http"]


def inspect_fuzzed(protocol: str, handler: hostile.Handler) -> None:
    """The inspection of a server run by `handler` returns (never raises) within its limits."""
    found, elapsed = hostile.run(BY_NAME[protocol], handler, Identity(protocol), LIMITS)
    assert elapsed < LIMITS.service_budget + LIMITS.timeout + 1
    assert isinstance(found, Inspection) and found.protocol == protocol


@pytest.mark.parametrize("protocol", sorted(BINARY))
@SERVED
@given(data=st.data())
def test_binary_inspection_survives_any_reply(protocol: str, data: st.DataObject) -> None:
    read, seeds = BINARY[protocol]
    reply = data.draw(replies_of(seeds))
    inspect_fuzzed(protocol, answers_once(read, reply))


@pytest.mark.parametrize("protocol", HTTP)
@SERVED
@given(body=HTTP_BODIES, status=st.sampled_from([200, 200, 200, 401, 404, 500]))
def test_http_inspection_survives_any_json(protocol: str, body: bytes, status: int) -> None:
    headers = {"Content-Type": "application/json", "X-Influxdb-Version": "1.8.10", "kbn-name": "kibana"}
    reply = replies.http_reply(status, headers, body)
    inspect_fuzzed(protocol, hostile.scripted(hostile.read_http, lambda _: reply, lambda r: r[1].encode()))
