"""The contract every protocol module keeps, checked for each one in the registry against small hostile
servers on 127.0.0.1: a silent server, a slow drip, a huge reply and a reset end in time with an error
of the right kind (never an exception), and no other protocol's captured reply is taken for its own."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import hostile
import pytest
import replies

from leaksonar.model import ErrorKind, Finding, Identity, Inspection, Limits, Problem
from leaksonar.protocols import PROTOCOLS
from leaksonar.protocols import cassandra as cql
from leaksonar.protocols.base import ProtocolModule
from leaksonar.protocols.kit import MAX_ERRORS, Learned, count

LIMITS = Limits(timeout=0.5, service_budget=2.0, max_bytes=256 * 1024)
SLACK = 1.0
"""Seconds a loaded machine may add to any bound."""
NAMES = [p.name for p in PROTOCOLS]
BY_NAME = {p.name: p for p in PROTOCOLS}
HTTP_BASED = (
    "elasticsearch",
    "kibana",
    "couchdb",
    "clickhouse",
    "etcd",
    "influxdb",
    "hdfs",
    "s3",
    "docker-registry",
    "http",
)

# Each protocol's answer to every request: far over the byte cap (announced, or sent without end).
HUGE: dict[str, hostile.Handler] = {
    **{name: hostile.http(hostile.ten_gb, {}) for name in HTTP_BASED},
    "redis": hostile.redis(lambda _: b"$9999999999\r\n"),
    "memcached": hostile.memcached(lambda _: hostile.repeat(b"STAT x 1\r\n" * 1000)),
    "mongodb": hostile.mongodb(lambda rid: hostile.mongo_reply(rid, bytes(64), 0x7FFFFFFF)),
    "postgresql": hostile.postgres(huge_row=True),
    "mysql": hostile.mysql(garbage=False),
    "ftp": hostile.sends(b"220-" + b"x" * 200_000),
    "rsync": hostile.sends(b"@RSYNCD: 32.0\n" + b"x" * 200_000),
    "smb": hostile.sends(b"\xff\xff\xff\xf0" + b"\xfeSMB" * 1000),
    "cassandra": hostile.scripted(
        hostile.read_cql,
        lambda frame: cql.HEADER.pack(0x84, 0, frame[0], cql.SUPPORTED, 0x7FFFFFFF),
        lambda frame: b"op%d" % frame[1],
    ),
}


def own_reply(name: str) -> bytes:
    """The first catalogued reply of protocol `name` (generic HTTP: a web server's)."""
    return next(iter(replies.CATALOGUE["none" if name == "http" else name].values()))


async def resets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the request (if the client speaks first), then reset the connection."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(reader.read(1), 0.2)
    await hostile.send(writer, hostile.Reset(b""))


def inspect(protocol: ProtocolModule, handler: hostile.Handler) -> tuple[Inspection, float]:
    return hostile.run(protocol, handler, Identity(protocol.name), LIMITS)


def kinds(found: Inspection) -> set[ErrorKind]:
    return {error.kind for error in found.errors}


@pytest.mark.parametrize("name", NAMES)
def test_silent_server_costs_a_timeout(name: str) -> None:
    found, elapsed = inspect(BY_NAME[name], hostile.silent)
    assert elapsed < 2 * LIMITS.timeout + SLACK
    assert ErrorKind.TIMEOUT in kinds(found), found.errors
    assert (found.exposed, found.collections, found.samples) == (False, (), ())


@pytest.mark.parametrize("name", NAMES)
def test_slow_drip_is_cut_off_in_time(name: str) -> None:
    found, elapsed = inspect(BY_NAME[name], hostile.drip(own_reply(name) * 100, interval=0.3))
    assert elapsed < LIMITS.service_budget + LIMITS.timeout + SLACK
    assert ErrorKind.TIMEOUT in kinds(found), found.errors
    assert found.samples == ()


@pytest.mark.parametrize("name", NAMES)
def test_huge_reply_is_cut_at_the_byte_cap(name: str) -> None:
    found, elapsed = inspect(BY_NAME[name], HUGE[name])
    assert elapsed < LIMITS.service_budget + SLACK
    assert ErrorKind.OVER_LIMIT in kinds(found), found.errors
    assert found.samples == ()


@pytest.mark.parametrize("name", NAMES)
def test_connection_reset_is_reported(name: str) -> None:
    found, elapsed = inspect(BY_NAME[name], resets)
    assert elapsed < LIMITS.timeout + SLACK
    assert ErrorKind.REFUSED in kinds(found), found.errors
    assert (found.exposed, found.collections, found.samples) == (False, (), ())


OTHERS_REPLIES = [
    pytest.param(protocol, reply, id=f"{protocol.name} <- {owner}: {label}")
    for protocol, (owner, named) in itertools.product(PROTOCOLS, replies.CATALOGUE.items())
    if protocol.name not in (owner, "http")  # generic HTTP claims every HTTP answer, and is tried last
    for label, reply in named.items()
]


@pytest.mark.parametrize(("protocol", "reply"), OTHERS_REPLIES)
def test_match_rejects_every_other_protocols_reply(protocol: ProtocolModule, reply: bytes) -> None:
    assert protocol.match(reply) is None


def test_every_protocol_has_its_hostile_servers_and_captured_replies() -> None:
    assert set(HUGE) == set(NAMES)
    assert set(replies.CATALOGUE) == {*NAMES, "none"} - {"http"}


# --- the kit --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3000, 3000),
        ("3000", 3000),
        (b" 12\r\n", 12),
        (12.6, 13),
        (0, 0),
        (-1, None),
        ("-5", None),
        (-0.5, None),
        (True, None),
        (float("nan"), None),
        ("12abc", None),
        ("\u00b2", None),
        (2**63, None),
        ("9" * 40, None),
        (None, None),
        ({"n": 1}, None),
    ],
)
def test_a_count_is_a_whole_number_or_none(value: object, expected: int | None) -> None:
    assert count(value) == expected


def test_errors_are_few_and_distinct() -> None:
    learned = Learned(None, "unknown", LIMITS)
    for i in range(MAX_ERRORS + 5):
        learned.add(ErrorKind.TIMEOUT, f"Error {i}.")
        learned.add(ErrorKind.TIMEOUT, f"Error {i}.")
    errors = learned.inspection("redis").errors
    assert [e.message for e in errors] == [
        *(f"Error {i}." for i in range(MAX_ERRORS)),
        "5 more errors were not kept.",
    ]


def test_a_record_keeps_error_kinds_and_reads_old_plain_sentences() -> None:
    problem = Problem(ErrorKind.OVER_LIMIT, "Inspection stopped: reply too large.")
    finding = Finding("127.0.0.1", 6379, "redis", None, "unknown", False, "t", "s", errors=(problem,))
    record = finding.to_record()
    assert record["errors"] == [{"kind": "over_limit", "message": "Inspection stopped: reply too large."}]
    assert Finding.from_record(record).errors == (problem,)
    old = {**record, "errors": ["Inspection stopped: no answer within 3 s.", {"kind": "?", "message": "x"}]}
    assert Finding.from_record(old).errors == (
        Problem(ErrorKind.UNKNOWN, "Inspection stopped: no answer within 3 s."),
        Problem(ErrorKind.UNKNOWN, "x"),
    )
