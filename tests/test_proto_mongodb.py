"""MongoDB: `match` on real reply bytes, inspection of the lab's stand-ins, hostile and legacy servers, and
identification on a non-default port."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import bson
import hostile
import pymongo
import pymongo.errors
import pytest
from bson.decimal128 import Decimal128
from bson.objectid import ObjectId
from replies import MONGODB_MONGOD_HTTP, MONGODB_NX, MONGODB_SECANTUS, MONGODB_SECANTUS_AUTH

from leaksonar.lab import lab_digest, servers
from leaksonar.lab.kinds.base import Launch
from leaksonar.lab.kinds.mongodb import KIND
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.http import PROTOCOL as HTTP
from leaksonar.protocols.mongodb import OP_MSG, OP_QUERY, OP_REPLY, PROTOCOL
from leaksonar.scan.identify import identify

NOT_MONGODB = {
    "empty": b"",
    "random": bytes(range(7, 250)) * 3,
    "header only": MONGODB_SECANTUS[:16],
    "another request": MONGODB_SECANTUS[:8] + b"\x02\x00\x00\x00" + MONGODB_SECANTUS[12:],
    "other opcode": MONGODB_SECANTUS[:12] + struct.pack("<i", 2012) + MONGODB_SECANTUS[16:],
    "not a hello": (
        struct.pack("<iiii", 16 + 20 + 17, 1, 0x4C53, OP_REPLY) + bytes(20) + bson.encode({"ok": 0.0, "x": 1})
    ),
}
READ_COMMANDS = {"hello", "isMaster", "buildInfo", "listDatabases", "listCollections", "collStats", "count"}
READ_COMMANDS |= {"find", "query"}
DEFAULT = Limits()
FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]


def identified(reply: bytes) -> Identity:
    identity = PROTOCOL.match(reply)
    assert identity is not None, reply
    return identity


def inspect(entry: dict[str, Any], limits: Limits = DEFAULT) -> Inspection:
    identity = identified(MONGODB_SECANTUS)
    return asyncio.run(PROTOCOL.inspect(Endpoint(entry["ip"], entry["port"]), identity, limits))


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "auth", "banner"),
    [
        (MONGODB_SECANTUS, "unknown", "MongoDB hello, maxWireVersion 27"),
        (MONGODB_SECANTUS_AUTH, "required", "MongoDB hello, maxWireVersion 27"),
        (MONGODB_NX, "unknown", "MongoDB hello, maxWireVersion 25"),
        (MONGODB_SECANTUS[:200], "unknown", "MongoDB hello"),  # cut short by the banner cap
        (MONGODB_MONGOD_HTTP, "unknown", MONGODB_MONGOD_HTTP.splitlines()[-1].decode()),
    ],
)
def test_match_claims_mongodb_replies(reply: bytes, auth: str, banner: str) -> None:
    identity = identified(reply)
    assert (identity.protocol, identity.software, identity.auth) == ("mongodb", Software("mongodb"), auth)
    assert identity.banner == banner


@pytest.mark.parametrize("name", NOT_MONGODB)
def test_match_rejects_other_replies(name: str) -> None:
    assert PROTOCOL.match(NOT_MONGODB[name]) is None


def test_probe_is_an_op_query_is_master_on_admin() -> None:
    length, request_id, response_to, opcode = struct.unpack_from("<iiii", PROTOCOL.probe)
    assert (length, request_id, response_to, opcode) == (len(PROTOCOL.probe), 0x4C53, 0, OP_QUERY)
    assert PROTOCOL.probe[20:31] == b"admin.$cmd\0" and struct.unpack_from("<ii", PROTOCOL.probe, 31) == (
        0,
        -1,
    )
    assert bson.decode(PROTOCOL.probe[39:]) == {"isMaster": 1}


# --- the lab --------------------------------------------------------------------------------------

OPEN = ("mongodb-secantus", "mongodb-nx")
IMPLEMENTATIONS = {"mongodb-secantus": "SecantusDB 0.7.0b3", "mongodb-nx": "NX-27017"}


@pytest.mark.parametrize("name", [*OPEN, "mongodb-auth"])
def test_probe_reply_of_every_lab_service_matches(lab_service: LabService, name: str) -> None:
    entry = lab_service(name)

    async def first_reply(probe: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(entry["ip"], entry["port"])
        writer.write(probe)
        try:
            return await asyncio.wait_for(reader.read(4096), 3)
        except ConnectionResetError:
            return b""
        finally:
            writer.close()

    before = lab_digest(entry)
    assert identified(asyncio.run(first_reply(PROTOCOL.probe))).protocol == "mongodb"
    assert PROTOCOL.match(asyncio.run(first_reply(HTTP.probe))) is None  # the stand-ins hang up
    assert lab_digest(entry) == before


@pytest.mark.parametrize("name", OPEN)
def test_open_server_is_inspected_as_seeded_and_left_unchanged(lab_service: LabService, name: str) -> None:
    entry = lab_service(name)
    limits = Limits(value_chars=16, sample_rows=3)
    before = lab_digest(entry)
    found = inspect(entry, limits)
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("mongodb", "none", True, ())
    assert found.software is not None
    assert {"name": found.software.name, "version": found.software.version} == entry["software"]
    assert found.details["implementation"] == IMPLEMENTATIONS[name]
    seeded = {(db["name"], c["name"]): c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {(c.database, c.name): c.rows for c in found.collections} == seeded
    assert found.rows == sum(seeded.values())
    assert not found.rows_estimated and not [c for c in found.collections if c.rows_estimated]
    assert found.databases is not None and found.databases >= len(entry["databases"])
    assert found.size_bytes and all(c.size_bytes for c in found.collections)

    assert {(s.database, s.collection) for s in found.samples} == set(seeded)
    assert all(len(s.documents) == limits.sample_rows for s in found.samples)
    lengths = [len(text) for s in found.samples for doc in s.documents for text in hostile.strings(doc)]
    assert max(lengths) == limits.value_chars
    users = next(c for c in found.collections if c.name == "users")
    assert {"_id", "contact", "national_id", "address"} <= set(users.fields)
    person = next(s for s in found.samples if s.collection == "users").documents[0]
    assert set(person["contact"]) == {"phone", "email"}


def test_auth_server_is_not_exposed_and_shows_nothing(lab_service: LabService) -> None:
    entry = lab_service("mongodb-auth")
    before = lab_digest(entry)
    found = inspect(entry)
    assert lab_digest(entry) == before
    assert (found.auth, found.exposed, found.collections, found.samples, found.rows, found.errors) == (
        "required",
        False,
        (),
        (),
        None,
        (),
    )
    assert found.software == Software("mongodb", entry["software"]["version"])  # buildInfo needs no login


@pytest.mark.parametrize("name", [*OPEN, "mongodb-auth"])
def test_manifest_counts_are_the_servers_own(lab_service: LabService, name: str) -> None:
    entry = lab_service(name)
    login = {"username": "root", "password": entry["credentials"]["password"]} if entry["credentials"] else {}
    with pymongo.MongoClient(entry["ip"], entry["port"], directConnection=True, **login) as client:
        for db in entry["databases"]:
            for collection in db["collections"]:
                assert client[db["name"]][collection["name"]].count_documents({}) == collection["rows"]


def test_auth_server_refuses_without_the_password(lab_service: LabService) -> None:
    entry = lab_service("mongodb-auth")
    client = pymongo.MongoClient(entry["ip"], entry["port"], directConnection=True)
    with client, pytest.raises(pymongo.errors.OperationFailure, match="requires authentication"):
        client.list_database_names()


@pytest.fixture
def moved(lab: dict[str, Any], tmp_path: Path) -> Iterator[Callable[[str], tuple[str, int]]]:
    """Start a second server like lab service `name` on its address but port 37017; yield its address."""
    started: list[tuple[int, str]] = []

    def start(name: str) -> tuple[str, int]:
        entry = next(s for s in lab["services"] if s["name"] == name)
        workdir = tmp_path / name
        workdir.mkdir()
        launch = Launch(name, entry["ip"], 37017, workdir, None, workdir / "server.log")
        pid = servers.spawn(KIND.start(launch).argv, launch.log)
        started.append((pid, launch.ip))
        servers.wait_listening(pid, launch.ip, launch.port, launch.log)
        return launch.ip, launch.port

    yield start
    for pid, ip in started:
        servers.stop(pid, "mongodb", ip)


@pytest.mark.parametrize("name", OPEN)
def test_server_on_a_non_default_port_is_identified(
    moved: Callable[[str], tuple[str, int]], name: str
) -> None:
    ip, port = moved(name)
    assert port not in PROTOCOL.default_ports
    identity = asyncio.run(identify(ip, port, None, Limits(timeout=1.0)))
    assert (identity.protocol, identity.software) == ("mongodb", Software("mongodb"))


# --- scripted and hostile servers -----------------------------------------------------------------


async def read_request(reader: asyncio.StreamReader) -> tuple[int, int, dict[str, Any]] | None:
    """(opcode, requestID, command) of one client message; a legacy collection query is {"query": ns}."""
    header = await reader.read(16)
    if len(header) < 16:
        return None
    length, request_id, _, opcode = struct.unpack("<iiii", header)
    body = await reader.readexactly(length - 16)
    if opcode == OP_MSG:
        return opcode, request_id, bson.decode(body[5:])
    namespace, _, rest = body[4:].partition(b"\0")
    command = bson.decode(rest[8:])
    if not namespace.endswith(b".$cmd"):
        command = {"query": namespace.decode(), "limit": -struct.unpack_from("<i", rest, 4)[0]}
    return opcode, request_id, command


def reply(opcode: int, request_id: int, *docs: dict[str, Any]) -> bytes:
    """An OP_MSG reply to an OP_MSG, an OP_REPLY to an OP_QUERY."""
    if opcode == OP_MSG:
        body = b"\0\0\0\0\0" + bson.encode(docs[0])
        return struct.pack("<iiii", 16 + len(body), 7, request_id, OP_MSG) + body
    body = struct.pack("<iqii", 0, 0, 0, len(docs)) + b"".join(bson.encode(d) for d in docs)
    return struct.pack("<iiii", 16 + len(body), 7, request_id, OP_REPLY) + body


PERSON = {
    "_id": ObjectId("65c67404640b1e9a270004ad"),
    "name": "Li Lei",
    "contact": {"phone": "13800000000", "email": "li@example.com"},
    "note": "n" * 400,
    "total": Decimal128("12.50"),
    "photo": b"\x89PNG" * 100,
    "deep": {"a": {"b": {"c": {"d": {"e": 1}}}}},
    "tags": list(range(200)),
}
STATS: dict[str, dict[str, Any]] = {
    "customers": {"count": 1234, "size": 99_999},
    "orders": {"count": 10, "size": 500},
}


def answer(command: dict[str, Any]) -> list[dict[str, Any]]:
    """A well-behaved MongoDB 6.0 holding shop.customers and shop.orders (and admin)."""
    name = next(iter(command))
    ok = {"ok": 1.0}
    if name in ("hello", "isMaster"):
        return [
            {"ismaster": True, "isWritablePrimary": True, "minWireVersion": 0, "maxWireVersion": 17, **ok}
        ]
    if name == "buildInfo":
        return [{"version": "6.0.5", "gitVersion": "c9a99c120371d4d4c52cbb15dac34a36ce8d3b1d", **ok}]
    if name == "listDatabases":
        dbs = [{"name": "admin", "sizeOnDisk": 40960}, {"name": "shop", "sizeOnDisk": 73728}]
        return [{"databases": dbs, "totalSize": 114688, **ok}]
    if name == "listCollections":
        batch = [
            {"name": "orders", "type": "collection"},
            {"name": "customers", "type": "collection"},
            {"name": "system.views", "type": "collection"},
            {"name": "big_spenders", "type": "view"},
        ]
        return [{"cursor": {"id": 0, "ns": "shop.$cmd.listCollections", "firstBatch": batch}, **ok}]
    if name == "collStats":
        return [{**STATS[command["collStats"]], **ok}]
    if name == "find":
        return [{"cursor": {"id": 0, "ns": f"shop.{command['find']}", "firstBatch": [PERSON] * 20}, **ok}]
    if name == "query":
        return [PERSON] * command["limit"]
    return [{"ok": 0.0, "errmsg": f"no such command: '{name}'", "code": 59}]


Answer = Callable[[int, int, dict[str, Any]], bytes]
"""(opcode, requestID, command) -> the reply bytes."""


def mongo(answers: Callable[[dict[str, Any]], list[dict[str, Any]]] = answer) -> Answer:
    return lambda opcode, request_id, command: reply(opcode, request_id, *answers(command))


def scripted(
    replies: Answer, seen: list[str] | None = None, delay: float = 0.0, legacy_only: bool = False
) -> hostile.Handler:
    """A handler answering each message with `replies(opcode, requestID, command)` (b"": hang up);
    `legacy_only` servers hang up on OP_MSG, as MongoDB before 3.6 does not answer it."""

    def respond(request: tuple[int, int, dict[str, Any]]) -> bytes:
        return b"" if legacy_only and request[0] == OP_MSG else replies(*request)

    return hostile.scripted(
        read_request, respond, lambda request: next(iter(request[2])).encode(), seen, delay
    )


def run(handler: hostile.Handler, limits: Limits = FAST) -> tuple[Inspection, float]:
    return hostile.run(PROTOCOL, handler, Identity("mongodb"), limits)


def test_well_behaved_server_is_measured_with_read_commands_only() -> None:
    seen: list[bytes] = []
    found, _ = run(scripted(mongo(), seen), Limits(value_chars=32, sample_rows=2))
    assert {s.decode() for s in seen} <= READ_COMMANDS
    assert (found.software, found.auth, found.errors) == (Software("mongodb", "6.0.5"), "none", ())
    assert (found.databases, found.rows, found.size_bytes) == (1, 1244, 73728)
    assert [(c.database, c.name, c.rows, c.size_bytes) for c in found.collections] == [
        ("shop", "customers", 1234, 99_999),
        ("shop", "orders", 10, 500),
    ]
    assert found.collections[0].fields == ("_id", "contact", "deep", "name", "note", "photo", "tags", "total")
    documents = found.samples[0].documents
    assert len(documents) == 2  # the server sent 20; the sample stops at sample_rows
    doc = documents[0]
    assert doc["_id"] == "65c67404640b1e9a270004ad" and doc["note"] == "n" * 32 and doc["photo"] is None
    assert (
        str(doc["total"]) == "12.50" and doc["deep"] == {"a": {"b": {"c": None}}} and len(doc["tags"]) == 50
    )


def test_old_server_is_inspected_over_op_query() -> None:
    seen: list[bytes] = []
    found, _ = run(scripted(mongo(), seen, legacy_only=True), Limits(sample_rows=2))
    assert found.details["wire_protocol"] == "OP_QUERY"
    assert (found.auth, found.rows, found.errors) == ("none", 1244, ())
    assert [len(s.documents) for s in found.samples] == [2, 2]
    assert b"query" in seen and b"find" not in seen


def test_count_is_used_where_coll_stats_is_refused() -> None:
    def answers(command: dict[str, Any]) -> list[dict[str, Any]]:
        if "count" in command:
            return [{"n": 77.0, "ok": 1.0}]
        return answer({"nosuch": 1} if "collStats" in command else command)

    found, _ = run(scripted(mongo(answers)))
    assert [(c.name, c.rows, c.size_bytes) for c in found.collections] == [
        ("customers", 77, None),
        ("orders", 77, None),
    ]
    assert found.size_bytes == 73728 and found.errors == ()


@pytest.mark.parametrize(
    "refusal",
    [
        {
            "ok": 0.0,
            "errmsg": "command listDatabases requires authentication",
            "code": 13,
            "codeName": "Unauthorized",
        },
        {"ok": 0.0, "errmsg": "not authorized on admin to execute command { listDatabases: 1 }", "code": 13},
        {"ok": 0.0, "errmsg": "unauthorized"},
    ],
)
def test_refused_list_databases_means_auth_required(refusal: dict[str, Any]) -> None:
    found, _ = run(scripted(mongo(lambda c: [refusal] if "listDatabases" in c else answer(c))))
    assert (found.auth, found.collections, found.rows, found.errors) == ("required", (), None, ())
    assert found.software == Software("mongodb", "6.0.5")


def test_other_refusal_is_reported_not_taken_for_auth() -> None:
    refusal = {"ok": 0.0, "errmsg": "interrupted at shutdown", "code": 11600}
    found, _ = run(scripted(mongo(lambda c: [refusal] if "listDatabases" in c else answer(c))))
    assert (found.auth, hostile.kinds(found)) == ("unknown", [ErrorKind.COMMAND_REFUSED])


def test_announced_huge_reply_is_refused_before_its_body() -> None:
    found, elapsed = run(scripted(lambda opcode, rid, _: struct.pack("<iiii", 2**31 - 1, 7, rid, opcode)))
    assert elapsed < 1.0
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_huge_sample_keeps_the_counts() -> None:
    def replies(opcode: int, request_id: int, command: dict[str, Any]) -> bytes:
        if "find" in command:
            return struct.pack("<iiii", 50_000_000, 7, request_id, opcode)
        return reply(opcode, request_id, *answer(command))

    found, elapsed = run(scripted(replies))
    assert elapsed < 1.0
    assert [(c.name, c.rows) for c in found.collections] == [("customers", 1234), ("orders", 10)]
    assert found.samples == () and found.rows == 1244
    assert hostile.kinds(found)[0] == ErrorKind.OVER_LIMIT


HOSTILE: dict[str, tuple[Answer, ErrorKind]] = {
    "garbage": (lambda opcode, rid, _: b"\x05\x00\x00\x00garbage" * 3, ErrorKind.PROTOCOL_ERROR),
    "bad bson": (
        lambda opcode, rid, _: reply(opcode, rid, {"ok": 1.0})[:-6] + b"\xff\xff\xff\xff\x00\x00",
        ErrorKind.COMMAND_REFUSED,
    ),
    "wrong request id": (
        lambda opcode, rid, _: reply(opcode, rid + 1, *answer({"hello": 1})),
        ErrorKind.PROTOCOL_ERROR,
    ),
    "hang-up": (lambda opcode, rid, _: b"", ErrorKind.REFUSED),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_reply_is_an_error_not_a_crash(name: str) -> None:
    answers, kind = HOSTILE[name]
    found, elapsed = run(scripted(answers))
    assert elapsed < 2.5
    assert (found.auth, found.collections, found.samples) == ("unknown", (), ())
    assert hostile.kinds(found) == [kind]


def test_silent_server_costs_two_timeouts() -> None:
    """OP_MSG, then the OP_QUERY fallback (MongoDB before 3.6 does not answer OP_MSG)."""
    found, elapsed = run(hostile.silent, Limits(timeout=0.4))
    assert elapsed < 1.3
    assert hostile.kinds(found) == [ErrorKind.TIMEOUT]


def test_many_collections_are_capped() -> None:
    def answers(command: dict[str, Any]) -> list[dict[str, Any]]:
        if "listCollections" in command:
            assert command["cursor"] == {"batchSize": 2}
            batch = [{"name": f"c{i}", "type": "collection"} for i in range(2)]
            return [{"cursor": {"id": 99, "firstBatch": batch}, "ok": 1.0}]
        if "collStats" in command:
            return [{"count": 1, "ok": 1.0}]
        return answer(command)

    found, _ = run(scripted(mongo(answers)), replace(FAST, max_collections=1))
    assert [c.name for c in found.collections] == ["c0"]
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_closed_port_is_reported() -> None:
    async def closed_port() -> Inspection:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await PROTOCOL.inspect(Endpoint("127.0.0.1", port), Identity("mongodb"), FAST)

    assert hostile.kinds(asyncio.run(closed_port())) == [ErrorKind.REFUSED]


@pytest.mark.parametrize("seed", range(20))
def test_random_reply_bodies_are_errors_not_crashes(seed: int) -> None:
    rnd = random.Random(seed)
    document = rnd.randbytes(rnd.randrange(1, 60))
    body = b"\0\0\0\0\0" + struct.pack("<i", 4 + len(document)) + document  # a body section of noise

    def replies(opcode: int, request_id: int, _: dict[str, Any]) -> bytes:
        return struct.pack("<iiii", 16 + len(body), 7, request_id, OP_MSG) + body

    found, elapsed = run(scripted(replies))
    assert elapsed < 2.5
    assert found.errors and found.errors[-1].kind in (ErrorKind.PROTOCOL_ERROR, ErrorKind.COMMAND_REFUSED)


def test_topology_is_named_in_banner_and_details() -> None:
    hello = {"ismaster": True, "maxWireVersion": 21, "setName": "rs0", "ok": 1.0}
    probe_reply = reply(OP_REPLY, 0x4C53, hello)
    assert identified(probe_reply).banner == "MongoDB hello, maxWireVersion 21, replica set rs0"
    router = {"ismaster": True, "msg": "isdbgrid", "maxWireVersion": 21, "ok": 1.0}
    assert identified(reply(OP_MSG, 0x4C53, router)).banner == "MongoDB hello, maxWireVersion 21, mongos"

    found, _ = run(scripted(mongo(lambda c: [hello] if "hello" in c else answer(c))))
    assert found.details == {"max_wire_version": 21, "topology": "replica set rs0"}
