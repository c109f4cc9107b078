"""CouchDB: identification from real reply bytes, read-only inspection of the lab (pouchdb-server),
scripted and hostile servers, a server moved to another port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hostile
import pytest
from replies import COUCHDB_LOCKED, COUCHDB_ROOT, POUCHDB_ROOT

from leaksonar.lab import lab_digest, servers
from leaksonar.lab.kinds.base import Launch
from leaksonar.lab.kinds.couchdb import KIND
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.couchdb import PROTOCOL
from leaksonar.scan.identify import identify

NOT_COUCHDB = {
    "empty": b"",
    "random": bytes(range(256)) * 4,
    "nginx": b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\n<html>Welcome</html>",
    "json with version": b'HTTP/1.1 200 OK\r\n\r\n{"status":"Welcome","version":"1.0"}',
    "not json": b"HTTP/1.1 200 OK\r\n\r\n{couchdb",
}
FAST = hostile.FAST
LabService = Callable[[str], dict[str, Any]]


def identified(reply: bytes) -> Identity:
    identity = PROTOCOL.match(reply)
    assert identity is not None, reply
    return identity


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "software", "auth"),
    [
        (POUCHDB_ROOT, Software("express-pouchdb", "4.2.0"), "unknown"),
        (COUCHDB_ROOT, Software("couchdb", "3.3.3"), "unknown"),
        (COUCHDB_LOCKED, Software("couchdb", "3.3.3"), "required"),
    ],
)
def test_match_claims_couchdb_roots(reply: bytes, software: Software, auth: str) -> None:
    identity = identified(reply)
    assert (identity.protocol, identity.software, identity.auth) == ("couchdb", software, auth)
    assert identity.banner == reply.split(b"\r\n")[0].decode()


@pytest.mark.parametrize("name", NOT_COUCHDB)
def test_match_rejects_other_replies(name: str) -> None:
    assert PROTOCOL.match(NOT_COUCHDB[name]) is None


# --- the lab --------------------------------------------------------------------------------------


def test_open_couchdb_is_exposed_with_every_database_counted(lab_service: LabService) -> None:
    entry = lab_service("couchdb-open")
    limits = Limits(value_chars=12, sample_rows=3)
    before = lab_digest(entry)
    found = asyncio.run(
        PROTOCOL.inspect(Endpoint(entry["ip"], entry["port"]), identified(POUCHDB_ROOT), limits)
    )
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("couchdb", "none", True, ())
    assert found.software is not None
    assert {"name": found.software.name, "version": found.software.version} == entry["software"]
    assert found.details == {"admin_party": True}
    expected = {(db["name"], c["name"]): c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {(c.database, c.name): c.rows for c in found.collections} == expected
    assert (found.rows, found.databases) == (sum(expected.values()), len(entry["databases"]))
    patients = next(c for c in found.collections if c.name == "patients")
    assert {"name", "phone", "email", "national_id"} <= set(patients.fields)
    assert {s.collection for s in found.samples} == {name for _, name in expected}
    for sample in found.samples:
        assert 0 < len(sample.documents) <= limits.sample_rows
        assert all(len(str(v)) <= limits.value_chars for doc in sample.documents for v in doc.values())


# --- scripted and hostile servers -----------------------------------------------------------------


async def read_request(reader: asyncio.StreamReader) -> str | None:
    """The path of one HTTP request; None at EOF."""
    head = await reader.readuntil(b"\r\n\r\n")
    return head.split(b" ", 2)[1].decode() if head else None


def http(status: int, body: Any, extra: bytes = b"") -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(raw), extra, raw)


ROOT = {"couchdb": "Welcome", "version": "2.3.1"}
DOCS = [{"_id": "_design/app"}, {"_id": "1", "name": "Li Lei", "phone": "13800000000", "note": "n" * 300}]


def fake_couchdb(path: str) -> bytes:
    """A CouchDB 2.3 in admin party holding database `people` (and _users)."""
    answers: dict[str, Any] = {
        "/": ROOT,
        "/_session": {"ok": True, "userCtx": {"name": None, "roles": ["_admin"]}},
        "/_all_dbs": ["_users", "people"],
        "/people": {"db_name": "people", "doc_count": 12345, "sizes": {"file": 99, "external": 50}},
    }
    if path.startswith("/people/_all_docs?"):
        return http(200, {"rows": [{"id": d["_id"], "doc": d} for d in DOCS]})
    return http(200, answers[path]) if path in answers else http(404, {"error": "not_found"})


def run(
    replies: Callable[[str], bytes],
    seen: list[bytes] | None = None,
    limits: Limits = FAST,
    delay: float = 0.0,
) -> tuple[Inspection, float]:
    handler = hostile.scripted(read_request, replies, lambda path: path.encode(), seen, delay)
    return hostile.run(PROTOCOL, handler, Identity("couchdb"), limits)


def test_scripted_couchdb_is_read_with_gets_of_known_paths() -> None:
    seen: list[bytes] = []
    found, _ = run(fake_couchdb, seen, Limits(value_chars=16))
    assert seen == [
        b"/",
        b"/_session",
        b"/_all_dbs",
        b"/people",
        b"/people/_all_docs?limit=5&include_docs=true",
    ]
    assert (found.auth, found.software, found.databases, found.rows, found.size_bytes, found.errors) == (
        "none", Software("couchdb", "2.3.1"), 1, 12345, 99, (),
    )  # fmt: skip
    assert found.details == {"admin_party": True}
    assert [(c.database, c.name, c.fields) for c in found.collections] == [
        ("people", "people", ("name", "note", "phone"))
    ]
    assert found.samples[0].documents == (
        {"_id": "1", "name": "Li Lei", "phone": "13800000000", "note": "n" * 16},
    )


def test_locked_all_dbs_means_auth_required() -> None:
    def replies(path: str) -> bytes:
        if path == "/_session":
            return http(200, {"ok": True, "userCtx": {"name": None, "roles": []}})
        return http(401, {"error": "unauthorized"}) if path == "/_all_dbs" else fake_couchdb(path)

    found, _ = run(replies)
    assert (found.auth, found.exposed, found.collections, found.errors) == ("required", False, (), ())
    assert found.details == {"admin_party": False}


def test_one_failing_database_keeps_the_others() -> None:
    def replies(path: str) -> bytes:
        if path == "/_all_dbs":
            return http(200, ["people", "broken"])
        return http(500, b"oops") if path.startswith("/broken") else fake_couchdb(path)

    found, _ = run(replies)
    assert [(c.name, c.rows) for c in found.collections] == [("broken", None), ("people", 12345)]
    assert found.rows == 12345
    assert hostile.kinds(found) == [ErrorKind.COMMAND_REFUSED]


def test_garbage_is_an_error_not_a_crash() -> None:
    found, _ = run(lambda path: http(200, b"{not json"))
    assert hostile.kinds(found) == [ErrorKind.PROTOCOL_ERROR]


# --- any port -------------------------------------------------------------------------------------


@contextmanager
def moved(ip: str, port: int, workdir: Path) -> Iterator[None]:
    """pouchdb-server started by the lab's kind on ip:port, stopped afterwards."""
    launch = Launch("couchdb-moved", ip, port, workdir, None, workdir / "server.log")
    started = KIND.start(launch)
    pid = servers.spawn(started.argv, launch.log)
    try:
        servers.wait_listening(pid, ip, port, launch.log)
        yield
    finally:
        servers.stop(pid, KIND.protocol, ip)


def test_moved_to_another_port_it_is_still_identified(tmp_path: Path) -> None:
    ip, port = "127.79.24.1", 15984
    with moved(ip, port, tmp_path):
        identity = asyncio.run(identify(ip, port, None, Limits()))
    assert (identity.protocol, identity.software) == ("couchdb", Software("express-pouchdb", "4.2.0"))
