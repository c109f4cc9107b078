"""etcd: identification from real reply bytes, read-only inspection of the lab, scripted, hostile servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hostile
import pytest

from leaksonar.lab import lab_digest, servers
from leaksonar.lab.kinds.base import Launch
from leaksonar.lab.kinds.etcd import KIND, free_port
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.etcd import PROTOCOL
from leaksonar.scan.identify import identify

# Bytes captured from etcd 3.4.23 (Debian etcd-server): its answer to the generic `GET /` and to its own
# probe `GET /version`; for contrast, InfluxDB 1.6.7 and a plain Go server (same 404 body, no CORS).
ETCD_404 = (
    b"HTTP/1.0 404 Not Found\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\n"
    b"Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\nAccess-Control-Allow-Origin: *\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
    b"Date: Sat, 28 Nov 2026 06:49:33 GMT\r\nContent-Length: 19\r\n\r\n404 page not found\n"
)
ETCD_VERSION = (
    b"HTTP/1.0 200 OK\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\n"
    b"Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\nAccess-Control-Allow-Origin: *\r\n"
    b"Content-Type: application/json\r\nDate: Sat, 28 Nov 2026 06:49:33 GMT\r\nContent-Length: 45\r\n\r\n"
    b'{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}'
)
AUTH_REFUSAL = (
    b'{"error":"etcdserver: user name is empty","message":"etcdserver: user name is empty","code":3}'
)
NOT_ETCD = {
    "empty": b"",
    "go": (
        b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"X-Content-Type-Options: nosniff\r\nContent-Length: 19\r\n\r\n404 page not found\n"
    ),
    "nginx": b"HTTP/1.1 404 Not Found\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n<html>",
    "other json": b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + b'{"version":"3.4.23"}',
}
FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "version"), [(ETCD_404, None), (ETCD_VERSION, "3.4.23")])
def test_match_claims_real_etcd_replies(reply: bytes, version: str | None) -> None:
    identity = PROTOCOL.match(reply)
    assert identity is not None
    assert (identity.protocol, identity.software, identity.auth) == (
        "etcd",
        Software("etcd", version),
        "unknown",
    )


@pytest.mark.parametrize("name", NOT_ETCD)
def test_match_rejects_other_replies(name: str) -> None:
    assert PROTOCOL.match(NOT_ETCD[name]) is None


# --- the lab --------------------------------------------------------------------------------------


def test_lab_etcd_is_identified_with_its_version(lab_service: LabService) -> None:
    entry = lab_service("etcd-open")
    identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
    assert (identity.protocol, identity.software) == ("etcd", Software("etcd", entry["software"]["version"]))


def test_open_etcd_is_exposed_with_every_key_counted(lab_service: LabService) -> None:
    entry = lab_service("etcd-open")
    limits = Limits(value_chars=6)
    before = lab_digest(entry)
    found = asyncio.run(PROTOCOL.inspect(Endpoint(entry["ip"], entry["port"]), Identity("etcd"), limits))
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("etcd", "none", True, ())
    assert found.software is not None
    assert {"name": found.software.name, "version": found.software.version} == entry["software"]
    expected = {(db["name"], c["name"]): c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {(c.database, c.name): c.rows for c in found.collections} == expected
    assert (found.rows, found.databases) == (sum(expected.values()), 1)
    assert found.size_bytes and found.size_bytes > 0
    (sample,) = found.samples
    assert len(sample.documents) == limits.sample_rows
    assert {"name", "phone", "email"} <= set(found.collections[0].fields)
    values = [v for doc in sample.documents for v in doc["value"].values()]
    assert max(len(v) for v in values if isinstance(v, str)) == limits.value_chars


@pytest.fixture
def moved(lab_service: LabService, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A second etcd on the lab etcd's address, on a port nothing expects."""
    ip = lab_service("etcd-open")["ip"]
    launch = Launch("etcd-moved", ip, free_port(ip), tmp_path, None, tmp_path / "server.log")
    pid = servers.spawn(KIND.start(launch).argv, launch.log)
    try:
        servers.wait_listening(pid, ip, launch.port, launch.log)
        yield ip, launch.port
    finally:
        servers.stop(pid, "etcd", ip)


def test_moved_to_another_port_it_is_still_identified(moved: tuple[str, int]) -> None:
    identity = asyncio.run(identify(*moved, None, FAST))
    assert (identity.protocol, identity.software.name if identity.software else None) == ("etcd", "etcd")


# --- scripted and hostile servers -----------------------------------------------------------------

Request = tuple[str, str, bytes]


async def read_http(reader: asyncio.StreamReader) -> Request | None:
    """(method, path, body) of one HTTP request; None at EOF."""
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode().split(" ", 2)
    length = 0
    while (header := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.decode().partition(":")
        length = int(value) if name.lower() == "content-length" else length
    return method, path, await reader.readexactly(length)


def http(body: bytes, status: str = "200 OK") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status.encode(),
        len(body),
        body,
    )


def fake_etcd(request: Request) -> bytes:
    """A well-behaved etcd holding two keys."""
    _, path, body = request
    if path == "/version":
        return http(b'{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}')
    if path == "/v3/maintenance/status":
        return http(b'{"dbSize":"20480"}')
    asked = json.loads(body)
    if asked.get("count_only"):
        return http(b'{"count":"2"}')
    kvs = [{"key": "dXNlcnMvMQ==", "value": "eyJuYW1lIjogImEifQ=="}, {"key": "Y2ZnL3g=", "value": "MQ=="}]
    if asked.get("keys_only"):
        return http(json.dumps({"kvs": [{"key": kv["key"]} for kv in kvs], "count": "2"}).encode())
    return http(json.dumps({"kvs": [kv for kv in kvs if kv["key"] == asked["key"]], "count": "1"}).encode())


def run(
    replies: Callable[[Request], bytes], seen: list[bytes] | None = None, limits: Limits = FAST
) -> tuple[Inspection, float]:
    handler = hostile.scripted(read_http, replies, lambda r: f"{r[0]} {r[1]} {r[2].decode()}".encode(), seen)
    return hostile.run(PROTOCOL, handler, Identity("etcd"), limits)


def test_only_read_calls_are_sent() -> None:
    seen: list[bytes] = []
    found, _ = run(fake_etcd, seen)
    assert (found.auth, found.rows, found.size_bytes, found.errors) == ("none", 2, 20480, ())
    assert found.samples[0].documents == (
        {"key": "users/1", "value": {"name": "a"}},
        {"key": "cfg/x", "value": "1"},
    )
    assert found.collections[0].fields == ("name",)
    calls = {s.split(b" ")[0] + b" " + s.split(b" ")[1] for s in seen}
    assert calls == {b"GET /version", b"POST /v3/kv/range", b"POST /v3/maintenance/status"}


def test_auth_refusal_means_auth_required() -> None:
    def replies(request: Request) -> bytes:
        return http(AUTH_REFUSAL, "400 Bad Request") if "kv" in request[1] else fake_etcd(request)

    found, _ = run(replies)
    assert (found.auth, found.collections, found.rows, found.errors) == ("required", (), None, ())


def test_reply_over_the_cap_is_an_error_not_a_crash() -> None:
    def replies(request: Request) -> bytes:
        return http(b'{"kvs": "' + b"x" * 5000 + b'"}') if request[1] == "/version" else fake_etcd(request)

    found, elapsed = run(replies, limits=Limits(timeout=1.0, max_bytes=1000))
    assert elapsed < 2.0
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]
