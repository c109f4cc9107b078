"""Elasticsearch/OpenSearch: `match` on reply bytes, inspection of the lab's OpenSearch (the reference
case), scripted and hostile servers, and identification on a non-default port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hostile
import httpx
import pytest
import replies
from replies import ES_401, ES_ROOT, OPENSEARCH_401, OSMEM_ROOT

from leaksonar.assess import assess
from leaksonar.lab import lab_digest, servers
from leaksonar.lab.kinds.base import Launch
from leaksonar.lab.kinds.opensearch import KIND
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.elasticsearch import PROTOCOL, mapping_fields
from leaksonar.scan.identify import identify

NOT_ELASTICSEARCH = {
    "empty": b"",
    "random": bytes(range(256)) * 4,
    "nginx": b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n\r\n<html></html>",
    "nginx basic auth": (
        b'HTTP/1.1 401 Unauthorized\r\nServer: nginx\r\nWWW-Authenticate: Basic realm="Restricted"\r\n\r\n'
    ),
    "json without tagline": (
        b'HTTP/1.1 200 OK\r\n\r\n{"cluster_name":"x","version":{"number":"1.0"},"tagline":"Hello"}'
    ),
    "cut-off root": OSMEM_ROOT[:300],
}
FAST = hostile.FAST
LabService = Callable[[str], dict[str, Any]]


def identified(reply: bytes) -> Identity:
    return replies.identified(PROTOCOL, reply)


def inspect(ip: str, port: int, limits: Limits = FAST) -> Inspection:
    return asyncio.run(PROTOCOL.inspect(Endpoint(ip, port), Identity("elasticsearch"), limits))


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "software", "auth"),
    [
        (OSMEM_ROOT, Software("opensearch", "3.8.0"), "unknown"),
        (ES_ROOT, Software("elasticsearch", "7.10.2"), "unknown"),
        (ES_401, None, "required"),
        (OPENSEARCH_401, None, "required"),
    ],
)
def test_match_claims_cluster_roots_and_security_refusals(
    reply: bytes, software: Software | None, auth: str
) -> None:
    identity = identified(reply)
    assert (identity.protocol, identity.software, identity.auth) == ("elasticsearch", software, auth)
    assert identity.banner == reply.split(b"\r\n")[0].decode()


@pytest.mark.parametrize("name", NOT_ELASTICSEARCH)
def test_match_rejects_other_replies(name: str) -> None:
    assert PROTOCOL.match(NOT_ELASTICSEARCH[name]) is None


def test_mapping_fields_are_dotted_leaves_without_multi_fields() -> None:
    text = {"type": "text", "fields": {"keyword": {"type": "keyword"}}}
    typeless = {"mappings": {"properties": {"xm": text, "addr": {"properties": {"city": text}}}}}
    typed_6x = {"mappings": {"doc": {"properties": {"sfzh": {"type": "keyword"}}}}}
    assert mapping_fields(typeless) == ("addr.city", "xm")
    assert mapping_fields(typed_6x) == ("sfzh",)
    assert mapping_fields({"mappings": {}}) == mapping_fields(None) == ()


# --- the lab --------------------------------------------------------------------------------------


def test_lab_opensearch_is_named_by_the_scanner(lab_service: LabService) -> None:
    entry = lab_service("opensearch-open")
    identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
    assert identity.protocol == "elasticsearch"
    assert identity.software == Software(entry["software"]["name"], entry["software"]["version"])


def test_open_opensearch_shows_the_reference_case(lab_service: LabService) -> None:
    entry = lab_service("opensearch-open")
    limits = Limits(sample_rows=3, value_chars=8)
    before = lab_digest(entry)
    found = inspect(entry["ip"], entry["port"], limits)
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("elasticsearch", "none", True, ())
    assert found.software == Software(entry["software"]["name"], entry["software"]["version"])
    expected = {(db["name"], c["name"]): c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {(c.database, c.name): c.rows for c in found.collections} == expected
    assert (found.databases, found.rows) == (1, sum(expected.values()))
    assert found.size_bytes and all(c.size_bytes for c in found.collections)
    person = next(c for c in found.collections if c.name == "person")
    assert person.fields == ("csrq", "jg", "sfzh", "sjhm", "xb", "xm", "zz")

    assert {s.collection for s in found.samples} == {name for _, name in expected}
    assert all(len(s.documents) == limits.sample_rows for s in found.samples)
    assert max(len(v) for s in found.samples for d in s.documents for v in hostile.strings(d)) == 8

    assessment = assess(inspect(entry["ip"], entry["port"]))
    assert {"name", "national_id", "phone", "case_record"} <= set(assessment.pii)
    assert assessment.severity == "critical"


def test_manifest_counts_are_the_servers(lab_service: LabService) -> None:
    entry = lab_service("opensearch-open")
    base = f"http://{entry['ip']}:{entry['port']}"
    for collection in entry["databases"][0]["collections"]:
        answer = httpx.get(f"{base}/{collection['name']}/_count", trust_env=False).json()
        assert answer["count"] == collection["rows"], collection


# --- scripted and hostile servers -----------------------------------------------------------------


def http(status: int, body: bytes | Any, close: bool = False) -> bytes:
    headers = {"content-type": "application/json"} | ({"Connection": "close"} if close else {})
    return replies.http_reply(status, headers, body)


ROOT = json.loads(ES_ROOT.split(b"\r\n\r\n", 1)[1])
CAT = [
    {"index": "person", "docs.count": "970000", "store.size": "23000000"},
    {"index": "archive", "docs.count": None, "store.size": None},
    {"index": ".kibana_1", "docs.count": "12", "store.size": "9000"},
]
MAPPING = {
    "person": {"mappings": {"properties": {"xm": {"type": "keyword"}, "dz": {"properties": {"sf": {}}}}}},
    "archive": {"mappings": {}},
}
SEARCH = {"hits": {"hits": [{"_source": {"xm": "李雷", "note": "n" * 400}}, {"_source": {"xm": "韩梅梅"}}]}}


def fake_cluster(request: tuple[str, str, bytes]) -> bytes:
    path = urlsplit(request[1]).path
    answers = {"/": ROOT, "/_cat/indices": CAT, "/_mapping": MAPPING}
    return http(200, answers.get(path, SEARCH))


def scripted(
    replies: Callable[[tuple[str, str, bytes]], bytes], seen: list[bytes] | None = None, delay: float = 0.0
) -> hostile.Handler:
    return hostile.scripted(hostile.read_http, replies, lambda r: f"{r[0]} {r[1]}".encode(), seen, delay)


def run(handler: hostile.Handler, limits: Limits = FAST) -> tuple[Inspection, float]:
    return hostile.run(PROTOCOL, handler, Identity("elasticsearch"), limits)


def test_scripted_cluster_is_read_with_gets_only() -> None:
    seen: list[bytes] = []
    found, _ = run(scripted(fake_cluster, seen), Limits(value_chars=16, sample_rows=1))
    assert all(request.startswith(b"GET ") for request in seen)
    assert {r.split()[1] for r in seen} == {
        b"/",
        b"/_cat/indices?format=json&bytes=b",
        b"/_mapping",
        b"/archive/_search?size=1",
        b"/person/_search?size=1",
    }
    assert (found.software, found.auth, found.errors) == (Software("elasticsearch", "7.10.2"), "none", ())
    assert [(c.name, c.rows, c.size_bytes, c.fields) for c in found.collections] == [
        ("archive", None, None, ()),
        ("person", 970000, 23000000, ("dz.sf", "xm")),
    ]
    assert (found.rows, found.size_bytes) == (970000, 23000000)
    assert found.samples[0].documents == ({"xm": "李雷", "note": "n" * 16},)


def test_root_read_by_identification_is_not_asked_again() -> None:
    seen: list[bytes] = []
    identity = Identity("elasticsearch", Software("opensearch", "2.11.0"), "unknown")
    found, _ = hostile.run(PROTOCOL, scripted(fake_cluster, seen), identity, FAST)
    assert b"/" not in {r.split()[1] for r in seen} and len(seen) == 4
    assert (found.software, found.auth, found.errors) == (Software("opensearch", "2.11.0"), "none", ())
    assert [c.name for c in found.collections] == ["archive", "person"]


def test_small_cluster_is_read_on_one_connection() -> None:
    connections: list[int] = []
    handler = scripted(fake_cluster)

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await handler(reader, writer)

    found, _ = run(counted)
    assert (len(connections), [s.collection for s in found.samples], found.errors) == (
        1,
        ["archive", "person"],
        (),
    )


def test_security_refusal_at_the_root_means_auth_required() -> None:
    found, _ = run(scripted(lambda _: http(401, json.loads(ES_401.split(b"\r\n\r\n", 1)[1]))))
    assert (found.auth, found.exposed, found.collections, found.rows, found.errors) == (
        "required",
        False,
        (),
        None,
        (),
    )


def test_locked_index_listing_means_auth_required() -> None:
    def replies(request: tuple[str, str, bytes]) -> bytes:
        return http(403, {"status": 403}) if "_cat" in request[1] else fake_cluster(request)

    found, _ = run(scripted(replies))
    assert (found.auth, found.software, found.collections) == (
        "required",
        Software("elasticsearch", "7.10.2"),
        (),
    )
    assert hostile.kinds(found) == [ErrorKind.AUTH_REQUIRED]


def test_one_failing_index_keeps_the_others() -> None:
    def replies(request: tuple[str, str, bytes]) -> bytes:
        return http(500, {"error": "boom"}) if request[1].startswith("/archive/") else fake_cluster(request)

    found, _ = run(scripted(replies))
    assert [c.name for c in found.collections] == ["archive", "person"]
    assert [s.collection for s in found.samples] == ["person"]
    assert hostile.kinds(found) == [ErrorKind.COMMAND_REFUSED]


def test_garbage_root_is_an_error_not_a_crash() -> None:
    found, _ = run(scripted(lambda _: http(200, b"\xff\xfe<html>", close=True)))
    assert (found.auth, found.collections) == ("unknown", ())
    assert hostile.kinds(found) == [ErrorKind.PROTOCOL_ERROR]


# --- any port -------------------------------------------------------------------------------------


@pytest.fixture
def moved(lab_service: LabService, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A second osmem-server on opensearch-open's address, port 19200 (empty)."""
    entry = lab_service("opensearch-open")
    launch = Launch("opensearch-moved", entry["ip"], 19200, tmp_path, None, tmp_path / "server.log")
    pid = servers.spawn(KIND.start(launch).argv, launch.log)
    try:
        servers.wait_listening(pid, launch.ip, launch.port, launch.log)
        yield launch.ip, launch.port
    finally:
        servers.stop(pid, "elasticsearch", launch.ip)


def test_server_on_a_non_default_port_is_identified(moved: tuple[str, int]) -> None:
    ip, port = moved
    assert port not in PROTOCOL.default_ports
    identity = asyncio.run(identify(ip, port, None, FAST))
    assert (identity.protocol, identity.software) == ("elasticsearch", Software("opensearch", "3.8.0"))
    found = inspect(ip, port)
    assert (found.auth, found.rows, found.collections, found.errors) == ("none", 0, (), ())


def test_root_is_asked_again_when_a_hostname_may_pick_another_virtual_host() -> None:
    """Identification's `GET /` goes without a Host field; inspection's carries the hostname, which a
    name-based front may route to another cluster: its software must be that cluster's, not the default's."""
    vhost_root = json.loads(OSMEM_ROOT.split(b"\r\n\r\n", 1)[1])

    async def by_host(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            request = ("GET", line.split()[1].decode(), b"")
            named = b"\r\nhost: db.example:" in b"\r\n" + head
            answer = http(200, vhost_root) if named and request[1] == "/" else fake_cluster(request)
            await hostile.send(writer, answer)
            if line.endswith(b"HTTP/1.0\r\n"):
                break
        writer.close()

    async def scan() -> tuple[Identity, Inspection]:
        server = await asyncio.start_server(by_host, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            identity = await identify("127.0.0.1", port, None, FAST, "db.example")
            endpoint = Endpoint("127.0.0.1", port, hostname="db.example")
            return identity, await PROTOCOL.inspect(endpoint, identity, FAST)

    identity, found = asyncio.run(scan())
    assert identity.software == Software("elasticsearch", "7.10.2")
    assert (found.software, found.errors) == (Software("opensearch", "3.8.0"), ())


def test_refusal_after_an_open_root_at_identification_means_auth_required() -> None:
    """Identification saw an open `GET /`, which inspection does not ask again: a 401 on everything it
    asks next is still auth required, with the identified software."""
    identity = Identity("elasticsearch", Software("elasticsearch", "7.10.2"), "unknown")
    found, _ = hostile.run(PROTOCOL, scripted(lambda _: ES_401), identity, FAST)
    assert (found.auth, found.software, found.collections) == ("required", identity.software, ())
    assert hostile.kinds(found) == [ErrorKind.AUTH_REQUIRED]
