"""ClickHouse: identification of the HTTP and native ports from real reply bytes, read-only inspection of
the lab (clickhouse-server 18.16), scripted and hostile servers, a server moved to other ports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hostile
import pytest
from replies import CLICKHOUSE_HTTP_LOCKED_QUERY as HTTP_LOCKED_QUERY
from replies import CLICKHOUSE_HTTP_ROOT as HTTP_ROOT
from replies import CLICKHOUSE_NATIVE_HELLO as NATIVE_HELLO
from replies import CLICKHOUSE_NATIVE_LOCKED as NATIVE_LOCKED
from replies import CLICKHOUSE_NATIVE_TO_HTTP as NATIVE_TO_HTTP
from replies import CLICKHOUSE_NATIVE_TO_PING as NATIVE_TO_PING

from leaksonar.lab import lab_digest, servers
from leaksonar.lab.kinds.base import Launch
from leaksonar.lab.kinds.clickhouse import KIND, NATIVE_PORT, native_port
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.clickhouse import CLIENT_HELLO, PROTOCOL
from leaksonar.scan.identify import identify

NOT_CLICKHOUSE = {
    "empty": b"",
    "random": bytes(range(256)) * 4,
    "ok with a server header": (
        b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html; charset=UTF-8\r\n\r\nOk.\n"
    ),
    "ok as plain text": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nOk.\n",
    "ok with more": b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n\r\nOk.\nmore",
    "not found": b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html; charset=UTF-8\r\n\r\nOk.\n",
    "mongodb-like": b"\x02\x00\x00\x00\x00\x00\x00\x00",
}
FAST = hostile.FAST
LabService = Callable[[str], dict[str, Any]]


def identified(reply: bytes) -> Identity:
    identity = PROTOCOL.match(reply)
    assert identity is not None, reply
    return identity


def inspect(ip: str, port: int, limits: Limits = FAST) -> Inspection:
    return asyncio.run(
        PROTOCOL.inspect(Endpoint(ip, port), Identity("clickhouse", Software("clickhouse")), limits)
    )


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "banner"),
    [
        (HTTP_ROOT, "HTTP/1.0 200 OK"),
        (HTTP_LOCKED_QUERY, "HTTP/1.0 401 Unauthorized"),
        (NATIVE_TO_HTTP, "Port 9000 is for clickhouse-client program"),
        (NATIVE_HELLO, "native protocol"),
        (NATIVE_TO_PING, "native protocol"),
        (NATIVE_LOCKED, "native protocol"),
    ],
)
def test_match_claims_clickhouse_replies(reply: bytes, banner: str) -> None:
    identity = identified(reply)
    assert (identity.protocol, identity.software, identity.banner) == (
        "clickhouse",
        Software("clickhouse"),
        banner,
    )


@pytest.mark.parametrize("name", NOT_CLICKHOUSE)
def test_match_rejects_other_replies(name: str) -> None:
    assert PROTOCOL.match(NOT_CLICKHOUSE[name]) is None


def test_client_hello_is_a_native_hello_as_user_default() -> None:
    assert CLIENT_HELLO == b"\x00\x09leaksonar\x01\x01\x81\xa9\x03\x00\x07default\x00"


# --- the lab --------------------------------------------------------------------------------------


def test_open_clickhouse_is_exposed_with_every_table_counted(lab_service: LabService) -> None:
    entry = lab_service("clickhouse-open")
    limits = Limits(value_chars=10, sample_rows=3)
    before = lab_digest(entry)
    found = inspect(entry["ip"], entry["port"], limits)
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("clickhouse", "none", True, ())
    assert found.software is not None
    assert {"name": found.software.name, "version": found.software.version} == entry["software"]
    assert found.details == {"readonly": "implied by GET (the server refuses readonly=1)"}
    expected = {(db["name"], c["name"]): c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {(c.database, c.name): c.rows for c in found.collections} == expected
    assert found.rows == sum(expected.values())
    assert found.databases == 2  # analytics and the server's own (empty) `default`
    assert all(c.size_bytes and c.size_bytes > 0 for c in found.collections)
    users = next(c for c in found.collections if c.name == "users")
    assert users.fields == ("id", "name", "phone", "email", "city", "created")
    assert {s.collection for s in found.samples} == {"users", "visits"}
    for sample in found.samples:
        assert len(sample.documents) == limits.sample_rows
        assert all(len(str(v)) <= limits.value_chars for doc in sample.documents for v in doc.values())


def test_native_port_of_the_lab_names_version_and_auth(lab_service: LabService) -> None:
    entry = lab_service("clickhouse-open")
    found = inspect(entry["ip"], NATIVE_PORT)
    assert found.software == Software("clickhouse", entry["software"]["version"])
    assert (found.auth, found.details, found.errors) == ("none", {"interface": "native"}, ())


# --- scripted and hostile servers -----------------------------------------------------------------


async def read_request(reader: asyncio.StreamReader) -> str | None:
    """The target of one HTTP request; None at EOF."""
    head = await reader.readuntil(b"\r\n\r\n")
    return head.split(b" ", 2)[1].decode() if head else None


def query_of(target: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}


def http(status: int, body: bytes, extra: bytes = b"X-ClickHouse-Server-Display-Name: x\r\n") -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)


def rows(*items: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


ANSWERS = {
    "SELECT version()": rows({"version": "24.3.1.1"}),
    "FROM system.databases": rows({"name": "default"}, {"name": "shop"}),
    "FROM system.tables": rows(
        {"database": "shop", "name": "buyers", "engine": "MergeTree"},
        {"database": "shop", "name": "notes", "engine": "TinyLog"},
        {"database": "shop", "name": "recent", "engine": "View"},
    ),
    "FROM system.parts": rows({"database": "shop", "table": "buyers", "rows": 777, "bytes": 4096}),
    "FROM system.columns": rows(
        {"database": "shop", "table": "buyers", "name": "name"},
        {"database": "shop", "table": "buyers", "name": "phone"},
        {"database": "shop", "table": "notes", "name": "text"},
    ),
    "SELECT count() AS rows FROM `shop`.`notes`": rows({"rows": 3}),
    "FROM `shop`.`buyers` LIMIT": rows({"name": "Li Lei", "phone": "13800000000" * 10}),
    "FROM `shop`.`notes` LIMIT": rows({"text": "hello"}),
}


def fake_clickhouse(target: str) -> bytes:
    sql = query_of(target)["query"]
    answer = next((body for key, body in ANSWERS.items() if key in sql), None)
    return http(200, answer) if answer is not None else http(500, b"Code: 60, unexpected query")


def run(
    replies: Callable[[str], bytes],
    seen: list[bytes] | None = None,
    limits: Limits = FAST,
    delay: float = 0.0,
) -> tuple[Inspection, float]:
    handler = hostile.scripted(read_request, replies, lambda target: target.encode(), seen, delay)
    return hostile.run(PROTOCOL, handler, Identity("clickhouse"), limits)


def test_scripted_server_is_read_with_bounded_read_only_selects() -> None:
    seen: list[bytes] = []
    found, _ = run(fake_clickhouse, seen, Limits(value_chars=20))
    for target in seen:
        params = query_of(target.decode())
        assert params["query"].startswith("SELECT ") and params["query"].endswith(" FORMAT JSONEachRow")
        assert (params["readonly"], params["max_result_bytes"], params["max_execution_time"]) == (
            "1",
            "1048576",
            "3",
        )
        assert params["result_overflow_mode"] == "throw"
    assert (found.auth, found.software, found.databases, found.rows, found.size_bytes, found.errors) == (
        "none", Software("clickhouse", "24.3.1.1"), 2, 780, 4096, (),
    )  # fmt: skip
    assert [(c.database, c.name, c.rows, c.size_bytes, c.fields) for c in found.collections] == [
        ("shop", "buyers", 777, 4096, ("name", "phone")),
        ("shop", "notes", 3, None, ("text",)),
        ("shop", "recent", None, None, ()),
    ]
    assert [(s.collection, s.documents) for s in found.samples] == [
        ("buyers", ({"name": "Li Lei", "phone": ("13800000000" * 2)[:20]},)),
        ("notes", ({"text": "hello"},)),
    ]  # the view is not sampled


@pytest.mark.parametrize(
    "refusal",
    [
        http(401, b"Code: 194, e.displayText() = DB::Exception: Password required for user default\n"),
        http(
            500,
            b"Code: 516. DB::Exception: default: Authentication failed: password is incorrect, "
            b"or there is no user with such name. (AUTHENTICATION_FAILED)\n",
        ),
        http(403, b"Forbidden", extra=b""),
    ],
)
def test_password_on_default_user_means_auth_required(refusal: bytes) -> None:
    found, _ = run(lambda _: refusal)
    assert (found.auth, found.exposed, found.collections, found.errors) == ("required", False, (), ())


def test_refused_readonly_setting_is_dropped_once() -> None:
    seen: list[bytes] = []

    def replies(target: str) -> bytes:
        if "readonly" in query_of(target):
            return http(
                500, b"Code: 164, e.displayText() = DB::Exception: Setting 'readonly' cannot be overrided"
            )
        return fake_clickhouse(target)

    found, _ = run(replies, seen)
    assert found.errors == () and found.rows == 780
    assert sum(b"readonly=1" in target for target in seen) == 1
    assert found.details == {"readonly": "implied by GET (the server refuses readonly=1)"}


def test_failing_table_keeps_the_others() -> None:
    def replies(target: str) -> bytes:
        if "`notes` LIMIT" in query_of(target)["query"]:
            return http(500, b"Code: 241, e.displayText() = DB::Exception: Memory limit exceeded\nstack")
        return fake_clickhouse(target)

    found, _ = run(replies)
    assert [c.name for c in found.collections] == ["buyers", "notes", "recent"]
    assert hostile.kinds(found) == [ErrorKind.COMMAND_REFUSED]


def native(reply: bytes) -> hostile.Handler:
    """A native port: its HTTP refusal to HTTP requests, `reply` to anything else."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if (await reader.read(4096)).startswith(b"GET "):
            writer.write(NATIVE_TO_HTTP)  # and hang up, as the native port does
        else:
            writer.write(reply)
            await reader.read()
        writer.close()

    return handle


@pytest.mark.parametrize(
    ("reply", "software", "auth", "kinds"),
    [
        (NATIVE_HELLO, Software("clickhouse", "18.16.1"), "none", []),
        (NATIVE_LOCKED, Software("clickhouse"), "required", []),
        (
            NATIVE_TO_PING,
            Software("clickhouse"),
            "unknown",
            [ErrorKind.COMMAND_REFUSED],
        ),
        (
            b"\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            Software("clickhouse"),
            "unknown",
            [ErrorKind.PROTOCOL_ERROR],
        ),
        (
            b"\x00\x7fClick",
            Software("clickhouse"),
            "unknown",
            [ErrorKind.TIMEOUT],
        ),
    ],
)
def test_native_port_is_asked_with_a_hello(
    reply: bytes, software: Software, auth: str, kinds: list[ErrorKind]
) -> None:
    found, elapsed = hostile.run(
        PROTOCOL, native(reply), Identity("clickhouse", Software("clickhouse")), Limits(timeout=0.5)
    )
    assert elapsed < 1.5
    assert (found.software, found.auth, hostile.kinds(found), found.details["interface"]) == (
        software,
        auth,
        kinds,
        "native",
    )


# --- any port -------------------------------------------------------------------------------------


@contextmanager
def moved(ip: str, port: int, workdir: Path) -> Iterator[None]:
    """clickhouse-server started by the lab's kind with its HTTP interface on ip:port, stopped afterwards."""
    launch = Launch("clickhouse-moved", ip, port, workdir, None, workdir / "server.log")
    started = KIND.start(launch)
    pid = servers.spawn(started.argv, launch.log)
    try:
        for each in (port, *started.ports):
            servers.wait_listening(pid, ip, each, launch.log)
        yield
    finally:
        servers.stop(pid, KIND.protocol, ip)


def test_moved_to_other_ports_both_interfaces_are_still_identified(tmp_path: Path) -> None:
    ip, port = "127.79.27.1", 18123
    with moved(ip, port, tmp_path):
        found = [asyncio.run(identify(ip, p, None, Limits())) for p in (port, native_port(port))]
        version = inspect(ip, native_port(port)).software
    assert [(i.protocol, i.banner) for i in found] == [
        ("clickhouse", "HTTP/1.0 200 OK"),
        ("clickhouse", "Port 18124 is for clickhouse-client program"),
    ]
    assert version == Software("clickhouse", "18.16.1")
