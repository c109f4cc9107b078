"""Memcached: identification from real reply bytes, read-only inspection of the lab, hostile servers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import hostile
import pytest

from leaksonar.lab import lab_digest
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.memcached import PROTOCOL

# Bytes captured from memcached 1.6.18 (plain, and with `-Y authfile`); for contrast, redis-server 7.0.15,
# MariaDB 10.11 and an HTTP server.
VERSION = b"VERSION 1.6.18\r\n"
UNAUTHENTICATED = b"CLIENT_ERROR unauthenticated\r\n"
NOT_MEMCACHED = {
    "empty": b"",
    "bare error": b"ERROR\r\n",
    "other version": b"VERSION\r\n",
}
READ_COMMANDS = {b"stats", b"lru_crawler", b"get"}
FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]


# --- match ----------------------------------------------------------------------------------------


def test_match_claims_the_version_reply() -> None:
    identity = PROTOCOL.match(VERSION)
    assert identity is not None
    assert (identity.protocol, identity.software, identity.auth, identity.banner) == (
        "memcached",
        Software("memcached", "1.6.18"),
        "none",
        "VERSION 1.6.18",
    )


def test_match_claims_the_refusal_of_an_authenticating_server() -> None:
    identity = PROTOCOL.match(UNAUTHENTICATED)
    assert identity is not None and (identity.protocol, identity.auth) == ("memcached", "required")


@pytest.mark.parametrize("name", NOT_MEMCACHED)
def test_match_rejects_other_protocols(name: str) -> None:
    assert PROTOCOL.match(NOT_MEMCACHED[name]) is None


def test_match_on_the_live_reply(lab_service: LabService) -> None:
    entry = lab_service("memcached")

    async def reply() -> bytes:
        reader, writer = await asyncio.open_connection(entry["ip"], entry["port"])
        writer.write(PROTOCOL.probe)
        data = await asyncio.wait_for(reader.read(4096), 3)
        writer.close()
        return data

    identity = PROTOCOL.match(asyncio.run(reply()))
    assert identity is not None and identity.software is not None
    assert identity.software.version == entry["software"]["version"]


# --- the lab --------------------------------------------------------------------------------------


def test_open_memcached_is_exposed_with_its_items_counted(lab_service: LabService) -> None:
    entry = lab_service("memcached")
    limits = Limits(value_chars=16)
    before = lab_digest(entry)
    found = asyncio.run(PROTOCOL.inspect(Endpoint(entry["ip"], entry["port"]), Identity("memcached"), limits))
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("memcached", "none", True, ())
    assert found.software is not None
    assert {"name": found.software.name, "version": found.software.version} == entry["software"]
    expected = {(db["name"], c["name"]): c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {(c.database, c.name): c.rows for c in found.collections} == expected
    assert (found.databases, found.rows) == (1, sum(expected.values()))
    assert found.size_bytes == found.collections[0].size_bytes and found.size_bytes > 0

    (sample,) = found.samples
    assert 0 < len(sample.documents) <= limits.sample_rows * 4
    assert {doc["key"] for doc in sample.documents} <= {key[: limits.value_chars] for key in entry["keys"]}
    values = [doc["value"] for doc in sample.documents]
    texts = [v for v in values if isinstance(v, str)] + [
        s for v in values if isinstance(v, dict) for s in v.values()
    ]
    assert texts and max(len(t) for t in texts) <= limits.value_chars
    objects = [v for v in values if isinstance(v, dict)]
    assert objects and set(found.collections[0].fields) >= set(objects[0])


# --- scripted and hostile servers -----------------------------------------------------------------

STATS = b"STAT pid 1\r\nSTAT version 1.6.18\r\nSTAT curr_items 3\r\nSTAT bytes 300\r\nEND\r\n"
ITEMS = {b"user:1": b'{"name": "Li Lei", "email": "li@example.com"}', b"page": b"<p>" + b"x" * 500 + b"</p>"}
METADUMP = b"".join(
    b"key=%s exp=-1 la=1 cas=1 fetch=no cls=1 size=%d\n" % (k, len(v)) for k, v in ITEMS.items()
)


def fake_memcached(line: bytes) -> bytes:
    """A well-behaved server holding `ITEMS`."""
    if line == b"stats":
        return STATS
    if line == b"lru_crawler metadump all":
        return METADUMP + b"END\r\n"
    if line.startswith(b"get "):
        found = [(k, ITEMS[k]) for k in line.split()[1:] if k in ITEMS]
        return b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(v), v) for k, v in found) + b"END\r\n"
    return b"ERROR\r\n"


async def read_line(reader: asyncio.StreamReader) -> bytes | None:
    """One command line from the client without its terminator; None at EOF or on an empty line."""
    return (await reader.readline()).rstrip(b"\r\n") or None


def scripted(replies: Callable[[bytes], bytes], seen: list[bytes] | None = None) -> hostile.Handler:
    """A connection handler answering each command line with `replies(line)` (b"": hang up)."""
    return hostile.scripted(read_line, replies, lambda line: line.split()[0], seen)


def run(handler: hostile.Handler, limits: Limits = FAST) -> tuple[Inspection, float]:
    return hostile.run(PROTOCOL, handler, Identity("memcached"), limits)


def test_items_are_sampled_with_read_commands_only() -> None:
    seen: list[bytes] = []
    found, _ = run(scripted(fake_memcached, seen), Limits(value_chars=32))
    assert set(seen) <= READ_COMMANDS
    assert (found.auth, found.rows, found.size_bytes, found.errors) == ("none", 3, 300, ())
    assert found.collections[0].fields == ("email", "name")
    assert [(doc["key"], doc["value"]) for doc in found.samples[0].documents] == [
        ("user:1", {"name": "Li Lei", "email": "li@example.com"}),
        ("page", "<p>" + "x" * 29),
    ]


def test_keys_come_from_cachedump_when_metadump_is_refused() -> None:
    cachedump = b"".join(b"ITEM %s [%d b; 0 s]\r\n" % (k, len(v)) for k, v in ITEMS.items()) + b"END\r\n"
    replies = {
        b"lru_crawler metadump all": b"CLIENT_ERROR lru crawler disabled\r\n",
        b"stats items": b"STAT items:1:number 2\r\nSTAT items:1:age 5\r\nEND\r\n",
        b"stats cachedump 1 20": cachedump,
    }
    found, _ = run(scripted(lambda line: replies.get(line) or fake_memcached(line)))
    assert found.errors == ()
    assert [doc["key"] for doc in found.samples[0].documents] == ["user:1", "page"]


def test_authenticating_server_is_not_exposed() -> None:
    found, _ = run(scripted(lambda _: UNAUTHENTICATED))
    assert (found.auth, found.exposed, found.collections, found.samples, found.errors) == (
        "required",
        False,
        (),
        (),
        (),
    )


def test_announced_huge_value_names_the_cap_and_keeps_the_counts() -> None:
    def replies(line: bytes) -> bytes:
        return b"VALUE user:1 0 9999999999\r\n" if line.startswith(b"get ") else fake_memcached(line)

    found, elapsed = run(scripted(replies))
    assert elapsed < 1.0
    assert [(c.name, c.rows) for c in found.collections] == [("items", 3)]
    assert (found.auth, found.samples) == ("none", ())
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_endless_metadump_is_cut_at_the_sample_size() -> None:
    def replies(line: bytes) -> bytes:
        if line == b"lru_crawler metadump all":
            return b"".join(b"key=k%d exp=-1 la=1 cas=1 fetch=no cls=1 size=1\n" % i for i in range(100_000))
        if line.startswith(b"get "):
            return b"".join(b"VALUE %s 0 1\r\nv\r\n" % k for k in line.split()[1:]) + b"END\r\n"
        return fake_memcached(line)

    found, elapsed = run(scripted(replies), Limits(timeout=1.0, sample_rows=2))
    assert elapsed < 2.0
    assert found.errors == ()
    assert [doc["key"] for doc in found.samples[0].documents] == [f"k{i}" for i in range(8)]


HOSTILE = {
    "endless stats": (b"STAT x " + b"y" * 200_000, ErrorKind.OVER_LIMIT),
    "too many stats": (b"STAT x y\r\n" * 200_000, ErrorKind.OVER_LIMIT),
    "garbage": (b"\x00\x01\x02\r\n", ErrorKind.PROTOCOL_ERROR),
    "hang-up": (b"", ErrorKind.REFUSED),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_reply_to_stats_is_an_error_not_a_crash(name: str) -> None:
    reply, kind = HOSTILE[name]
    found, elapsed = run(scripted(lambda _: reply))
    assert elapsed < 2.5
    assert (found.auth, found.collections, found.samples) == ("unknown", (), ())
    assert hostile.kinds(found) == [kind]
