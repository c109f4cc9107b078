"""Cassandra: identification of CQL frames, read-only inspection of the lab's stand-in, hostile servers."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import hostile
import pytest
from replies import (
    CASSANDRA_HTTP_PROBE_ERROR,
    CASSANDRA_OLD_SERVER_ERROR,
    CASSANDRA_SUPPORTED,
    SCYLLA_SUPPORTED,
    error,
    supported,
)

from leaksonar.lab import lab_digest
from leaksonar.lab.standins import cassandra as standin
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols import cassandra as cql
from leaksonar.protocols.cassandra import PROTOCOL
from leaksonar.scan.identify import identify

FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]
Request = tuple[int, int, bytes]


NOT_CASSANDRA = {
    "empty": b"",
    "request frame": cql.frame(cql.OPTIONS),
    "truncated": CASSANDRA_SUPPORTED[:20],
    "huge length": b"\x84\x00\x00\x00\x06\x7f\xff\xff\xff",
    "unknown error code": error(0x7777, "nope"),
    "supported without CQL_VERSION": supported({"COMPRESSION": ["lz4"]}),
    "random": bytes(range(0x80, 0x100)),
}


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "name"),
    [
        (CASSANDRA_SUPPORTED, "cassandra"),
        (SCYLLA_SUPPORTED, "scylladb"),
        (CASSANDRA_HTTP_PROBE_ERROR, "cassandra"),
        (CASSANDRA_OLD_SERVER_ERROR, "cassandra"),
    ],
)
def test_match_claims_cql_frames(reply: bytes, name: str) -> None:
    identity = PROTOCOL.match(reply)
    assert identity is not None
    assert (identity.protocol, identity.software, identity.auth) == ("cassandra", Software(name), "unknown")
    assert identity.banner.startswith(("SUPPORTED ", "ERROR 0x000a Invalid or unsupported protocol version"))


@pytest.mark.parametrize("name", NOT_CASSANDRA)
def test_match_rejects_other_bytes(name: str) -> None:
    assert PROTOCOL.match(NOT_CASSANDRA[name]) is None


def test_probe_is_an_options_frame() -> None:
    assert PROTOCOL.probe == b"\x04\x00\x00\x00\x05\x00\x00\x00\x00"


# --- the lab (stand-in) ---------------------------------------------------------------------------


def inspect(ip: str, port: int, limits: Limits) -> Inspection:
    return asyncio.run(PROTOCOL.inspect(cql.Endpoint(ip, port), Identity("cassandra"), limits))


@pytest.mark.parametrize("name", ["cassandra-open", "cassandra-auth"])
def test_lab_stand_in_is_identified_by_both_probes(lab_service: LabService, name: str) -> None:
    entry = lab_service(name)
    identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
    assert (identity.protocol, identity.software) == ("cassandra", Software("cassandra"))


def test_open_stand_in_is_exposed_with_every_table_counted(lab_service: LabService) -> None:
    entry = lab_service("cassandra-open")
    limits = Limits(value_chars=8, sample_rows=3)
    before = lab_digest(entry)
    found = inspect(entry["ip"], entry["port"], limits)
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("cassandra", "none", True, ())
    assert found.software is not None
    assert {"name": found.software.name, "version": found.software.version} == entry["software"]
    expected = {(db["name"], c["name"]): c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {(c.database, c.name): c.rows for c in found.collections} == expected
    assert (found.rows, found.databases) == (sum(expected.values()), len(entry["databases"]))
    assert not found.rows_estimated  # count(*) of every table
    customers = next(c for c in found.collections if c.name == "customers")
    assert {"name", "phone", "email"} <= set(customers.fields)
    assert {s.collection for s in found.samples} == {name for _, name in expected}
    for sample in found.samples:
        assert len(sample.documents) == limits.sample_rows
        texts = [v for doc in sample.documents for v in doc.values() if isinstance(v, str)]
        assert max(map(len, texts)) <= limits.value_chars


def test_protected_stand_in_is_not_exposed_and_shows_nothing(lab_service: LabService) -> None:
    entry = lab_service("cassandra-auth")
    before = lab_digest(entry)
    found = inspect(entry["ip"], entry["port"], Limits())
    assert lab_digest(entry) == before
    assert (found.auth, found.exposed, found.collections, found.samples, found.rows) == (
        "required",
        False,
        (),
        (),
        None,
    )
    assert found.details["authenticator"] == standin.AUTHENTICATOR


def test_moved_to_another_port_it_is_still_identified() -> None:
    async def moved() -> Identity:
        server = await standin.serve("127.0.0.1", 0, None)
        async with server:
            return await identify("127.0.0.1", server.sockets[0].getsockname()[1], None, FAST)

    identity = asyncio.run(moved())
    assert (identity.protocol, identity.banner[:24]) == ("cassandra", "ERROR 0x000a Invalid or ")


# --- scripted and hostile servers -----------------------------------------------------------------


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """(stream, opcode, body) of one request frame; None at EOF."""
    try:
        header = await reader.readexactly(9)
    except asyncio.IncompleteReadError:
        return None
    _, _, stream, opcode, length = cql.HEADER.unpack(header)
    return stream, opcode, await reader.readexactly(length)


def statement(request: Request) -> bytes:
    """The CQL text of a QUERY ("op<n>" for other opcodes)."""
    _, opcode, body = request
    if opcode != cql.QUERY:
        return b"op%d" % opcode
    reader = cql.Reader(body)
    return reader.take(reader.int())


@functools.cache
def tables(password: str | None) -> standin.Standin:
    return standin.Standin(password)


def like_standin(password: str | None = None) -> Callable[[Request], bytes]:
    """The lab stand-in's replies; a new connection state at each OPTIONS (a client's first request)."""
    connection = standin.Connection(tables(password))

    def reply(request: Request) -> bytes:
        nonlocal connection
        stream, opcode, body = request
        if opcode == cql.OPTIONS:
            connection = standin.Connection(tables(password))
        return standin.response(connection.answer(opcode, body), stream)

    return reply


def run(
    replies: Callable[[Request], bytes], seen: list[bytes] | None = None, limits: Limits = FAST
) -> tuple[Inspection, float]:
    handler = hostile.scripted(read_request, replies, statement, seen)
    return hostile.run(PROTOCOL, handler, Identity("cassandra"), limits)


def test_only_reads_are_sent() -> None:
    seen: list[bytes] = []
    found, _ = run(like_standin(), seen)
    assert found.rows == standin.CUSTOMERS + standin.TICKETS
    queries = [s for s in seen if not s.startswith(b"op")]
    assert seen[:2] == [b"op%d" % cql.OPTIONS, b"op%d" % cql.STARTUP]
    assert queries and all(q.startswith(b"SELECT ") for q in queries)


def test_authenticate_is_answered_with_nothing() -> None:
    seen: list[bytes] = []
    found, _ = run(like_standin("secret"), seen)
    assert found.auth == "required"
    assert seen == [b"op%d" % cql.OPTIONS, b"op%d" % cql.STARTUP]


HOSTILE = {
    "huge frame": (b"\x84\x00\x00\x01\x06\x7f\xff\xff\xff", ErrorKind.OVER_LIMIT),
    "negative length": (b"\x84\x00\x00\x01\x06\xff\xff\xff\xff", ErrorKind.PROTOCOL_ERROR),
    "request frame": (cql.frame(cql.SUPPORTED), ErrorKind.PROTOCOL_ERROR),
    "hang-up": (b"", ErrorKind.REFUSED),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_reply_is_an_error_not_a_crash(name: str) -> None:
    reply, kind = HOSTILE[name]
    found, elapsed = run(lambda _: reply)
    assert elapsed < 2.5
    assert (found.auth, found.collections, found.samples) == ("unknown", (), ())
    assert hostile.kinds(found) == [kind]


def test_announced_huge_frame_names_the_cap() -> None:
    found, elapsed = run(lambda _: HOSTILE["huge frame"][0])
    assert elapsed < 1.0
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]
    assert f"cap is {Limits().max_bytes}" in found.errors[0].message


def test_slow_count_gives_no_row_count_but_the_rest() -> None:
    """A count(*) that outlasts the timeout leaves that table's rows unknown; the connection is opened
    anew and the inspection goes on."""
    base = like_standin()

    def replies(request: Request) -> bytes:
        if b"count(*)" in statement(request) and b"tickets" in statement(request):
            return b"\x84"  # a frame that never completes
        return base(request)

    found, elapsed = run(replies, limits=Limits(timeout=0.5, service_budget=5.0))
    assert elapsed < 3.0
    rows = {c.name: c.rows for c in found.collections}
    assert rows == {"customers": standin.CUSTOMERS, "tickets": None}
    assert found.rows == standin.CUSTOMERS and found.rows_estimated  # at least: tickets are not counted
    assert not [c for c in found.collections if c.rows_estimated]
    assert hostile.kinds(found) == [ErrorKind.TIMEOUT]
    assert {s.collection for s in found.samples} == {"customers", "tickets"}


def test_writes_are_refused_by_the_stand_in() -> None:
    reply = like_standin()
    reply((1, cql.STARTUP, cql.STARTUP_BODY))
    answer = reply((2, cql.QUERY, cql.query_body("DELETE FROM crm.customers", 10)))
    assert answer[4] == cql.ERROR and b"read-only" in answer
