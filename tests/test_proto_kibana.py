"""Kibana: `match` on reply bytes, the lab's Kibana stand-in in front of the reference case, scripted and
hostile servers, the stand-in's refusal to forward anything but GET, and identification on a
non-default port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hostile
import httpx
import pytest
from replies import KIBANA_6, KIBANA_7_SPACES, KIBANA_LOGIN
from replies import KIBANA_STANDIN_ROOT as STANDIN_ROOT
from replies import KIBANA_STATUS as STATUS
from replies import KIBANA_STATUS_BODY as STATUS_BODY

from leaksonar.lab import lab_digest, servers
from leaksonar.lab.kinds.base import Launch
from leaksonar.lab.kinds.kibana import KIND
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.kibana import PROTOCOL
from leaksonar.scan.identify import identify

NOT_KIBANA = {
    "empty": b"",
    "random": bytes(range(255, -1, -1)) * 4,
    "nginx": b"HTTP/1.1 302 Found\r\nServer: nginx\r\nLocation: /login\r\nContent-Length: 0\r\n\r\n",
    "json without status": b'HTTP/1.1 200 OK\r\n\r\n{"name":"x","version":{"number":"1"}}',
    "header in the body": b"HTTP/1.1 200 OK\r\n\r\nkbn-name: kibana\r\n",
}
FAST = hostile.FAST
LabService = Callable[[str], dict[str, Any]]


def identified(reply: bytes) -> Identity:
    identity = PROTOCOL.match(reply)
    assert identity is not None, reply
    return identity


def inspect(ip: str, port: int, limits: Limits = FAST) -> Inspection:
    return asyncio.run(PROTOCOL.inspect(Endpoint(ip, port), Identity("kibana"), limits))


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "version", "auth"),
    [
        (STANDIN_ROOT, None, "unknown"),
        (KIBANA_7_SPACES, None, "unknown"),
        (KIBANA_LOGIN, None, "required"),
        (KIBANA_6, "6.8.23", "unknown"),
        (STATUS, "7.10.2", "none"),
    ],
)
def test_match_claims_kibana_answers(reply: bytes, version: str | None, auth: str) -> None:
    identity = identified(reply)
    assert (identity.protocol, identity.software, identity.auth) == (
        "kibana",
        Software("kibana", version),
        auth,
    )
    assert identity.banner == reply.split(b"\r\n")[0].decode()


@pytest.mark.parametrize("name", NOT_KIBANA)
def test_match_rejects_other_replies(name: str) -> None:
    assert PROTOCOL.match(NOT_KIBANA[name]) is None


# --- the lab --------------------------------------------------------------------------------------


def test_lab_kibana_is_named_by_the_scanner(lab_service: LabService) -> None:
    entry = lab_service("kibana-open")
    identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
    assert (identity.protocol, identity.software) == ("kibana", Software("kibana"))


def test_open_kibana_leaks_the_cluster_behind_it(lab_service: LabService) -> None:
    entry, backend = lab_service("kibana-open"), lab_service("opensearch-open")
    limits = Limits(sample_rows=2, value_chars=6)
    before = lab_digest(entry), lab_digest(backend)
    found = inspect(entry["ip"], entry["port"], limits)
    assert (lab_digest(entry), lab_digest(backend)) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("kibana", "none", True, ())
    assert found.software == Software(entry["software"]["name"], entry["software"]["version"])
    assert found.details == {
        "via": "kibana",
        "elasticsearch": {"software": backend["software"]["name"], "version": backend["software"]["version"]},
    }
    expected = {(db["name"], c["name"]): c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {(c.database, c.name): c.rows for c in found.collections} == expected
    assert found.rows == sum(expected.values()) == 6000
    assert {s.collection for s in found.samples} == {"person", "address", "case"}
    assert all(len(s.documents) == 2 for s in found.samples)
    assert all(len(v) <= 6 for s in found.samples for d in s.documents for v in d.values())


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "HEAD", ""])
def test_standin_forwards_nothing_but_get(lab_service: LabService, method: str) -> None:
    entry, backend = lab_service("kibana-open"), lab_service("opensearch-open")
    before = lab_digest(backend)
    answer = httpx.post(
        f"http://{entry['ip']}:{entry['port']}/api/console/proxy",
        params={"path": "/person", "method": method},
        headers={"kbn-xsrf": "true"},
        trust_env=False,
    )
    assert answer.status_code == 400 and answer.headers["kbn-name"] == "kibana"
    assert lab_digest(backend) == before


# --- scripted and hostile servers -----------------------------------------------------------------


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    """(method, target, body) of one HTTP request."""
    head = await reader.readuntil(b"\r\n\r\n")
    method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
    sizes = [
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    return method, target, await reader.readexactly(sizes[0] if sizes else 0)


def http(status: int, body: bytes | Any) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = (
        b"HTTP/1.1 %d X\r\nkbn-name: kibana\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    )
    return head % (status, len(raw)) + raw


CLUSTER: dict[str, Any] = {
    "/": {"cluster_name": "c", "version": {"number": "7.10.2"}, "tagline": "You Know, for Search"},
    "/_cat/indices": [{"index": "person", "docs.count": "970000", "store.size": "23000000"}],
    "/_mapping": {"person": {"mappings": {"properties": {"xm": {"type": "keyword"}}}}},
    "/person/_search": {"hits": {"hits": [{"_source": {"xm": "李雷"}}]}},
}


def fake_kibana(request: tuple[str, str, bytes]) -> bytes:
    method, target, _ = request
    url = urlsplit(target)
    if method == "GET" and url.path == "/api/status":
        return http(200, STATUS_BODY)
    path = parse_qs(url.query)["path"][0]
    return http(200, CLUSTER[urlsplit(path).path])


def scripted(
    replies: Callable[[tuple[str, str, bytes]], bytes], seen: list[bytes] | None = None, delay: float = 0.0
) -> hostile.Handler:
    return hostile.scripted(read_request, replies, lambda r: f"{r[0]} {r[1]} {r[2]!r}".encode(), seen, delay)


def run(handler: hostile.Handler, limits: Limits = FAST) -> tuple[Inspection, float]:
    return hostile.run(PROTOCOL, handler, Identity("kibana"), limits)


def test_only_status_and_forwarded_gets_are_sent() -> None:
    seen: list[bytes] = []
    found, _ = run(scripted(fake_kibana, seen))
    assert seen[0] == b"GET /api/status b''"
    proxied = [urlsplit(r.split()[1].decode()) for r in seen[1:]]
    assert all(r.split()[0] == b"POST" and r.endswith(b" b''") for r in seen[1:])
    assert {url.path for url in proxied} == {"/api/console/proxy"}
    assert {parse_qs(url.query)["method"][0] for url in proxied} == {"GET"}
    assert [parse_qs(url.query)["path"][0] for url in proxied] == [
        "/",
        "/_cat/indices?format=json&bytes=b",
        "/_mapping",
        "/person/_search?size=5",
    ]
    assert (found.software, found.auth, found.errors) == (Software("kibana", "7.10.2"), "none", ())
    assert [(c.name, c.rows, c.fields) for c in found.collections] == [("person", 970000, ("xm",))]
    assert found.details == {
        "via": "kibana",
        "elasticsearch": {"software": "elasticsearch", "version": "7.10.2"},
    }


def test_status_behind_login_means_auth_required() -> None:
    unauthorized = {"statusCode": 401, "error": "Unauthorized", "message": "Unauthorized"}
    found, _ = run(scripted(lambda _: http(401, unauthorized)))
    assert (found.auth, found.exposed, found.collections, found.details, found.errors) == (
        "required",
        False,
        (),
        {},
        (),
    )


def test_open_status_but_locked_cluster_means_auth_required() -> None:
    def replies(request: tuple[str, str, bytes]) -> bytes:
        return fake_kibana(request) if "status" in request[1] else http(401, {"statusCode": 401})

    found, _ = run(scripted(replies))
    assert (found.software, found.auth, found.collections) == (Software("kibana", "7.10.2"), "required", ())
    assert found.details == {"via": "kibana"}


def test_huge_proxied_reply_is_cut_at_the_cap() -> None:
    limits = Limits(timeout=1.0, max_bytes=32 * 1024)

    def replies(request: tuple[str, str, bytes]) -> bytes:
        return http(200, b"[" + b" " * 100_000 + b"]") if "_cat" in request[1] else fake_kibana(request)

    found, elapsed = run(scripted(replies), limits)
    assert elapsed < 2.5
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]
    assert found.details["elasticsearch"] == {"software": "elasticsearch", "version": "7.10.2"}


# --- any port -------------------------------------------------------------------------------------


@pytest.fixture
def moved(lab_service: LabService, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A second Kibana stand-in on kibana-open's address, port 15601, fronting the same opensearch-open."""
    entry = lab_service("kibana-open")
    launch = Launch("kibana-moved", entry["ip"], 15601, tmp_path, None, tmp_path / "server.log")
    pid = servers.spawn(KIND.start(launch).argv, launch.log)
    try:
        servers.wait_listening(pid, launch.ip, launch.port, launch.log)
        yield launch.ip, launch.port
    finally:
        servers.stop(pid, "kibana", launch.ip)


def test_kibana_on_a_non_default_port_is_identified(moved: tuple[str, int], lab_service: LabService) -> None:
    ip, port = moved
    assert port not in PROTOCOL.default_ports
    identity = asyncio.run(identify(ip, port, None, FAST))
    assert (identity.protocol, identity.software) == ("kibana", Software("kibana"))
    found = inspect(ip, port)
    entry = lab_service("kibana-open")
    assert {c.name: c.rows for c in found.collections} == {
        c["name"]: c["rows"] for c in entry["databases"][0]["collections"]
    }
