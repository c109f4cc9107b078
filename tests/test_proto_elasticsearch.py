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

from leaksonar.assess import assess
from leaksonar.lab import lab_digest, servers
from leaksonar.lab.kinds.base import Launch
from leaksonar.lab.kinds.opensearch import KIND
from leaksonar.model import Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.elasticsearch import PROTOCOL, mapping_fields
from leaksonar.scan.identify import identify

# Captured on loopback from osmem-server 0.1.6 (OpenSearch API 3.8.0), answering the HTTP probe.
OSMEM_ROOT = (
    b"HTTP/1.0 200 OK\r\nContent-Length: 419\r\nContent-Type: application/json; charset=UTF-8\r\n"
    b"X-Elastic-Product: Elasticsearch\r\nDate: Sat, 28 Nov 2026 06:49:39 GMT\r\n\r\n"
    b'{"cluster_name":"osmem","cluster_uuid":"osmem-cluster","name":"osmem-node","tagline":"The OpenSearch '
    b'Project: https://opensearch.org/","version":{"build_date":"2026-01-01T00:00:00.000000000Z",'
    b'"build_hash":"osmem","build_snapshot":false,"build_type":"tar","distribution":"opensearch",'
    b'"lucene_version":"10.5.0","minimum_index_compatibility_version":"2.0.0",'
    b'"minimum_wire_compatibility_version":"2.19.0","number":"3.8.0"}}'
)
# No Elasticsearch is packaged here: these follow Elasticsearch's documented answers (7.10.2 root; 8.x
# security refusal) and the OpenSearch security plugin's.
ES_ROOT = (
    b"HTTP/1.0 200 OK\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: 535\r\n\r\n"
    b'{\n  "name" : "es01",\n  "cluster_name" : "docker-cluster",\n  "cluster_uuid" : "Q4cLhhEyTm2bMhRfu'
    b'3T3bA",\n  "version" : {\n    "number" : "7.10.2",\n    "build_flavor" : "default",\n    "build_type" '
    b': "docker",\n    "build_hash" : "747e1cc71def077253878a59143c1f785afa92b9",\n    "build_date" : '
    b'"2021-01-13T00:42:12.435326Z",\n    "build_snapshot" : false,\n    "lucene_version" : "8.7.0",\n    '
    b'"minimum_wire_compatibility_version" : "6.8.0",\n    "minimum_index_compatibility_version" : '
    b'"6.0.0-beta1"\n  },\n  "tagline" : "You Know, for Search"\n}\n'
)
ES_401 = (
    b'HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm="security" charset="UTF-8"\r\n'
    b"WWW-Authenticate: ApiKey\r\ncontent-type: application/json\r\ncontent-length: 403\r\n\r\n"
    b'{"error":{"root_cause":[{"type":"security_exception","reason":"missing authentication credentials '
    b'for REST request [/]","header":{"WWW-Authenticate":["Basic realm=\\"security\\" charset=\\"UTF-8\\"",'
    b'"ApiKey"]}}],"type":"security_exception","reason":"missing authentication credentials for REST '
    b'request [/]","header":{"WWW-Authenticate":["Basic realm=\\"security\\" charset=\\"UTF-8\\"",'
    b'"ApiKey"]}},"status":401}'
)
OPENSEARCH_401 = (
    b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="OpenSearch Security"\r\n'
    b"content-type: text/plain; charset=UTF-8\r\ncontent-length: 12\r\n\r\nUnauthorized"
)
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
    "kibana": (
        b"HTTP/1.1 302 Found\r\nkbn-name: kibana\r\nkbn-license-sig: 0b1c\r\nlocation: /app/home\r\n"
        b"content-length: 0\r\n\r\n"
    ),
    "redis": b"-ERR wrong number of arguments for 'get' command\r\n",
    "mysql": b"d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x03\x00\x00\x00",
}
FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]


def identified(reply: bytes) -> Identity:
    identity = PROTOCOL.match(reply)
    assert identity is not None, reply
    return identity


def inspect(ip: str, port: int, limits: Limits = FAST) -> Inspection:
    return asyncio.run(PROTOCOL.inspect(Endpoint(ip, port), Identity("elasticsearch"), limits))


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


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
    assert max(len(v) for s in found.samples for d in s.documents for v in strings(d)) == 8

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


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """(method, target) of one HTTP request; its body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head:
        return None
    method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    await reader.readexactly(length)
    return method, target


def http(status: int, body: bytes | Any, close: bool = False) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    extra = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n%scontent-length: %d\r\n\r\n%s" % (
        status,
        extra,
        len(raw),
        raw,
    )


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


def fake_cluster(request: tuple[str, str]) -> bytes:
    path = urlsplit(request[1]).path
    answers = {"/": ROOT, "/_cat/indices": CAT, "/_mapping": MAPPING}
    return http(200, answers.get(path, SEARCH))


def scripted(
    replies: Callable[[tuple[str, str]], bytes], seen: list[bytes] | None = None, delay: float = 0.0
) -> hostile.Handler:
    return hostile.scripted(read_request, replies, lambda r: f"{r[0]} {r[1]}".encode(), seen, delay)


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
    def replies(request: tuple[str, str]) -> bytes:
        return http(403, {"status": 403}) if "_cat" in request[1] else fake_cluster(request)

    found, _ = run(scripted(replies))
    assert (found.auth, found.software, found.collections) == (
        "required",
        Software("elasticsearch", "7.10.2"),
        (),
    )
    assert found.errors == ("Listing the indices needs credentials (HTTP 403).",)


def test_one_failing_index_keeps_the_others() -> None:
    def replies(request: tuple[str, str]) -> bytes:
        return http(500, {"error": "boom"}) if request[1].startswith("/archive/") else fake_cluster(request)

    found, _ = run(scripted(replies))
    assert [c.name for c in found.collections] == ["archive", "person"]
    assert [s.collection for s in found.samples] == ["person"]
    assert found.errors == ("Sampling archive failed: GET /archive/_search?size=5 answered HTTP 500.",)


def test_huge_reply_is_cut_at_the_cap() -> None:
    limits = Limits(timeout=1.0, max_bytes=64 * 1024)

    def replies(request: tuple[str, str]) -> bytes:
        return http(200, b"[" + b" " * 200_000 + b"]") if "_cat" in request[1] else fake_cluster(request)

    found, elapsed = run(scripted(replies), limits)
    assert elapsed < 2.5
    assert found.errors == (f"Inspection stopped: reply too large: body over {limits.max_bytes} bytes.",)


def test_garbage_root_is_an_error_not_a_crash() -> None:
    found, _ = run(scripted(lambda _: http(200, b"\xff\xfe<html>", close=True)))
    assert (found.auth, found.collections) == ("unknown", ())
    assert found.errors == ("Inspection stopped: GET / did not answer JSON.",)


def test_silent_server_costs_one_timeout() -> None:
    found, elapsed = run(hostile.silent, Limits(timeout=0.5))
    assert elapsed < 1.5
    assert found.errors == ("Inspection stopped: no answer within 0.5 s.",)


def test_slow_server_is_cut_off_by_the_service_budget() -> None:
    found, elapsed = run(scripted(fake_cluster, delay=0.4), Limits(timeout=1.0, service_budget=1.0))
    assert elapsed < 1.5
    assert found.errors[-1] == "Inspection stopped: the 1 s budget ran out."


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
