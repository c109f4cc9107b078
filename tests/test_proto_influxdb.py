"""InfluxDB 1.x: identification from real reply bytes, read-only inspection of the lab, scripted servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hostile
import pytest

from leaksonar.lab import lab_digest, servers
from leaksonar.lab.kinds.base import Launch
from leaksonar.lab.kinds.etcd import free_port
from leaksonar.lab.kinds.influxdb import KIND
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.influxdb import PROTOCOL
from leaksonar.scan.identify import identify

# Bytes captured from InfluxDB 1.6.7~rc0 (Debian influxdb): the generic `GET /`, and /query refusals with
# `auth-enabled = true` (before and after the first admin user); for contrast, etcd 3.4.23.
INFLUX_404 = (
    b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\nX-Influxdb-Build: OSS\r\nX-Influxdb-Version: 1.6.7~rc0\r\n"
    b"Date: Sat, 28 Nov 2026 06:49:33 GMT\r\nContent-Length: 19\r\n\r\n404 page not found\n"
)
NO_CREDENTIALS = ("401 Unauthorized", b'{"error":"unable to parse authentication credentials"}')
NO_ADMIN_YET = (
    "403 Forbidden",
    b'{"error":"error authorizing query: create admin user first or disable authentication"}',
)
NOT_INFLUXDB = {
    "empty": b"",
    "nginx": b"HTTP/1.1 404 Not Found\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n<html>",
    "header in body": b"HTTP/1.1 200 OK\r\nContent-Length: 33\r\n\r\n\r\nX-Influxdb-Version: 1.6.7\r\n",
    "not http": b"X-Influxdb-Version: 1.6.7\r\n",
}
FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]


# --- match ----------------------------------------------------------------------------------------


def test_match_claims_the_version_header() -> None:
    identity = PROTOCOL.match(INFLUX_404)
    assert identity is not None
    assert (identity.protocol, identity.software, identity.auth) == (
        "influxdb",
        Software("influxdb", "1.6.7~rc0"),
        "unknown",
    )


@pytest.mark.parametrize("name", NOT_INFLUXDB)
def test_match_rejects_other_replies(name: str) -> None:
    assert PROTOCOL.match(NOT_INFLUXDB[name]) is None


# --- the lab --------------------------------------------------------------------------------------


def test_lab_influxdb_is_identified_with_its_version(lab_service: LabService) -> None:
    entry = lab_service("influxdb-open")
    identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
    expected = Software("influxdb", entry["software"]["version"])
    assert (identity.protocol, identity.software) == ("influxdb", expected)


def test_open_influxdb_is_exposed_with_every_point_counted(lab_service: LabService) -> None:
    entry = lab_service("influxdb-open")
    limits = Limits(value_chars=4)
    before = lab_digest(entry)
    found = asyncio.run(PROTOCOL.inspect(Endpoint(entry["ip"], entry["port"]), Identity("influxdb"), limits))
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("influxdb", "none", True, ())
    assert found.software is not None
    assert {"name": found.software.name, "version": found.software.version} == entry["software"]
    expected = {(db["name"], c["name"]): c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {(c.database, c.name): c.rows for c in found.collections} == expected
    assert (found.rows, found.databases) == (sum(expected.values()), len(entry["databases"]))
    assert not found.rows_estimated and not [c for c in found.collections if c.rows_estimated]
    assert found.details["series"]["telemetry"] > 0
    gps = next(c for c in found.collections if c.name == "gps")
    assert gps.fields == ("device", "driver", "lat", "lon")
    for sample in found.samples:
        assert len(sample.documents) == limits.sample_rows
        assert all(
            len(v) <= limits.value_chars for d in sample.documents for v in d.values() if isinstance(v, str)
        )


@pytest.fixture
def moved(lab_service: LabService, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A second InfluxDB on the lab InfluxDB's address, on a port nothing expects."""
    ip = lab_service("influxdb-open")["ip"]
    launch = Launch("influxdb-moved", ip, free_port(ip), tmp_path, None, tmp_path / "server.log")
    pid = servers.spawn(KIND.start(launch).argv, launch.log)
    try:
        servers.wait_listening(pid, ip, launch.port, launch.log)
        yield ip, launch.port
    finally:
        servers.stop(pid, "influxdb", ip)


def test_moved_to_another_port_it_is_still_identified(moved: tuple[str, int]) -> None:
    identity = asyncio.run(identify(*moved, None, FAST))
    assert (identity.protocol, identity.software.name if identity.software else None) == (
        "influxdb",
        "influxdb",
    )


# --- scripted and hostile servers -----------------------------------------------------------------

Request = tuple[str, str]


async def read_http(reader: asyncio.StreamReader) -> Request | None:
    """(method, target) of one HTTP request without a body; None at EOF."""
    line = await reader.readline()
    if not line:
        return None
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    method, target, _ = line.decode().split(" ", 2)
    return method, target


def http(body: bytes, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Influxdb-Version: 1.8.10\r\n"
    return head.encode() + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def result(*series: dict[str, Any]) -> bytes:
    return json.dumps({"results": [{"statement_id": 0, "series": list(series)}]}).encode()


def statement(request: Request) -> str:
    return parse_qs(urlsplit(request[1]).query).get("q", [""])[0]


def fake_influxdb(request: Request) -> bytes:
    """A well-behaved server: database `fleet` (and `_internal`) with measurement `gps` of 7 points."""
    q = statement(request)
    answers = {
        "SHOW DATABASES": result(
            {"name": "databases", "columns": ["name"], "values": [["_internal"], ["fleet"]]}
        ),
        "SHOW MEASUREMENTS LIMIT 201": result(
            {"name": "measurements", "columns": ["name"], "values": [["gps"]]}
        ),
        "SHOW SERIES CARDINALITY": result({"columns": ["cardinality estimation"], "values": [[3]]}),
        'SELECT count(*) FROM "gps"': result(
            {
                "name": "gps",
                "columns": ["time", "count_lat", "count_lon"],
                "values": [["1970-01-01T00:00:00Z", 7, 6]],
            }
        ),
        'SELECT * FROM "gps" LIMIT 5': result(
            {
                "name": "gps",
                "columns": ["time", "lat", "lon"],
                "values": [["2025-01-01T00:00:00Z", 31.2, 121.5]],
            }
        ),
    }
    return http(answers.get(q, b"")) if q or request[1] != "/ping" else http(b"", "204 No Content")


def run(
    replies: Callable[[Request], bytes], seen: list[bytes] | None = None, limits: Limits = FAST
) -> tuple[Inspection, float]:
    handler = hostile.scripted(
        read_http, replies, lambda r: f"{r[0]} {urlsplit(r[1]).path} {statement(r)}".encode(), seen
    )
    return hostile.run(PROTOCOL, handler, Identity("influxdb"), limits)


def test_only_read_statements_are_sent_with_get() -> None:
    seen: list[bytes] = []
    found, _ = run(fake_influxdb, seen)
    assert (found.auth, found.databases, found.rows, found.errors) == ("none", 1, 7, ())
    assert [(c.database, c.name, c.rows, c.fields) for c in found.collections] == [
        ("fleet", "gps", 7, ("lat", "lon"))
    ]
    assert found.details == {"series": {"fleet": 3}}
    assert found.rows_estimated and found.collections[0].rows_estimated  # 7 lat, 6 lon: at least 7 points
    assert all(s.startswith((b"GET /ping", b"GET /query SHOW ", b"GET /query SELECT ")) for s in seen)


@pytest.mark.parametrize("refusal", [NO_CREDENTIALS, NO_ADMIN_YET])
def test_refused_query_means_auth_required(refusal: tuple[str, bytes]) -> None:
    found, _ = run(lambda r: http(refusal[1], refusal[0]) if statement(r) else fake_influxdb(r))
    assert (found.auth, found.collections, found.rows, found.errors) == ("required", (), None, ())
    assert found.software == Software("influxdb", "1.8.10")


def test_failed_count_leaves_rows_unknown_and_goes_on() -> None:
    def replies(request: Request) -> bytes:
        if statement(request).startswith("SELECT count"):
            return http(b'{"results":[{"statement_id":0,"error":"max-select-point limit exceeded"}]}')
        return fake_influxdb(request)

    found, _ = run(replies)
    assert [(c.name, c.rows) for c in found.collections] == [("gps", None)]
    assert hostile.kinds(found) == [ErrorKind.COMMAND_REFUSED]
    assert found.samples and found.rows is None


def test_reply_over_the_cap_is_an_error_not_a_crash() -> None:
    def replies(request: Request) -> bytes:
        return (
            http(b"[" + b"1," * 5000 + b"1]")
            if statement(request) == "SHOW DATABASES"
            else fake_influxdb(request)
        )

    found, elapsed = run(replies, limits=Limits(timeout=1.0, max_bytes=1000))
    assert elapsed < 2.0
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]
