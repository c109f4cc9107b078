"""The REST API: every endpoint, cursor pages, access levels (a public viewer never sees a critical
service's address), errors (400/401/404/429, never 500), the live event stream, and no raw
personal data in any response."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from conftest import index_contents, leaksonar_here
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_no_raw_pii import seeded_identifiers

from leaksonar.model import Assessment, Collection, Finding, PiiHit, Software
from leaksonar.store.db import Store
from leaksonar.web import api
from leaksonar.web.access import public_ids
from leaksonar.web.app import create_app
from leaksonar.web.ids import Kind
from leaksonar.web.keys import create_key, revoke_key
from leaksonar.web.ratelimit import TokenBucket

T1, T2, T3 = "2026-11-01T00:00:00Z", "2026-11-20T00:00:00Z", "2026-11-27T00:00:00Z"
CRITICAL_ONLY = ("127.0.9.4", "127.0.9.5")
"""Hosts whose only service is critical (127.0.9.4 was critical, then closed; 127.0.9.5 became critical)."""
MIXED = ("127.0.9.1", 6379)
"""A critical service on a host that also has a medium one."""
PUBLIC_EVENTS = [2, 3, 6, 10]
"""The row ids of the synthetic store's events a public viewer may see (the others are on critical
services); the web shows them as public ids (`shown`)."""
UNLIMITED = "1000000/minute"


def finding(
    ip: str, port: int, protocol: str, severity: Any, rows: int, scan_id: str, when: str, *pii: str
) -> Finding:
    hits = {c: PiiHit(20, 20, ("sfzh",), "3101**********123X") for c in pii}
    return Finding(
        ip=ip,
        port=port,
        protocol=protocol,
        software=Software(protocol, "1.0"),
        auth="required" if severity == "info" else "none",
        exposed=severity != "info",
        time=when,
        scan_id=scan_id,
        databases=1,
        rows=rows,
        size_bytes=rows * 100,
        collections=(Collection("db", "people", rows, rows * 100, ("xm", "sfzh")),),
        assessment=Assessment(hits, {("db", "people"): pii}, False, (), severity, f"{protocol} {severity}"),
        geo={"country": "CN"},
        network={"asn": 64500, "org": "Example Net"},
    )


def record_scan(
    store: Store, scan_id: str, when: str, found: list[Finding], space: str = "127.0.9.0/24"
) -> None:
    """A finished scan of `space` (a service it covered and did not find is closed) and its events."""
    block = ipaddress.IPv4Network(space)
    coverage = {"intervals": [[int(block[0]), int(block[-1])]], "ports": [5432, 6379, 9200, 27017]}
    store.scans.begin(scan_id, when, space, "5432,6379,9200,27017", 4 * block.num_addresses, {}, coverage)
    store.findings.add(found)
    store.scans.finish(scan_id, when, "done")
    store.events.record(scan_id)


def synthetic_store(db: str) -> Store:
    """Two scans of six hosts: critical, high, medium, info services; ten events (ids 1-10)."""
    store = Store(db)
    record_scan(
        store,
        "s1",
        T1,
        [
            finding("127.0.9.1", 6379, "redis", "critical", 5000, "s1", T1, "national_id"),
            finding("127.0.9.1", 9200, "elasticsearch", "medium", 300, "s1", T1),
            finding("127.0.9.2", 27017, "mongodb", "high", 800, "s1", T1, "phone"),
            finding("127.0.9.3", 5432, "postgresql", "info", 0, "s1", T1),
            finding("127.0.9.4", 9200, "elasticsearch", "critical", 9000, "s1", T1, "passport"),
            finding("127.0.9.5", 27017, "mongodb", "medium", 400, "s1", T1),
            finding("127.0.9.6", 6379, "redis", "medium", 1000, "s1", T1),
        ],
    )
    record_scan(
        store,
        "s2",
        T2,
        [
            finding("127.0.9.1", 6379, "redis", "critical", 9000, "s2", T2, "national_id"),
            finding("127.0.9.1", 9200, "elasticsearch", "medium", 300, "s2", T2),
            finding("127.0.9.2", 27017, "mongodb", "high", 800, "s2", T2, "phone"),
            finding("127.0.9.3", 5432, "postgresql", "info", 0, "s2", T2),
            finding("127.0.9.5", 27017, "mongodb", "critical", 400, "s2", T2, "national_id"),
            finding("127.0.9.6", 6379, "redis", "medium", 10, "s2", T2),
        ],
    )
    return store


@pytest.fixture(scope="module")
def synthetic(new_index: Callable[[], str]) -> dict[str, Any]:
    """The synthetic index with three keys, on SQLite and on PostgreSQL."""
    store = synthetic_store(new_index())
    analyst, public = create_key(store, "ana", "analyst"), create_key(store, "pub", "public")
    revoked = create_key(store, "gone", "analyst")
    revoke_key(store, "gone")
    return {"store": store, "analyst": analyst, "public": public, "revoked": revoked}


def client(store: Store, **settings: Any) -> TestClient:
    return TestClient(
        create_app(store, **{"allowed_hosts": ["testserver"], "rate_limit": UNLIMITED, **settings})
    )


@pytest.fixture(scope="module")
def anon(synthetic: dict[str, Any]) -> TestClient:
    return client(synthetic["store"])


@pytest.fixture(scope="module")
def analyst(synthetic: dict[str, Any]) -> TestClient:
    test = client(synthetic["store"])
    test.headers["X-API-Key"] = synthetic["analyst"]
    return test


def ok(test: TestClient, url: str, **params: Any) -> Any:
    response = test.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def error(test: TestClient, url: str, status: int, **params: Any) -> str:
    response = test.get(url, params=params)
    assert response.status_code == status, response.text
    message: str = response.json()["error"]
    assert message and "\n" not in message
    return message


def places(items: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(i["ip"], i["port"]) for i in items}


# --- endpoints -----------------------------------------------------------------------------------


def test_openapi_documents_every_endpoint(anon: TestClient) -> None:
    assert anon.get("/docs").status_code == 200
    paths = ok(anon, "/openapi.json")["paths"]
    for path in (
        "search",
        "hosts/{ip}",
        "findings/{finding_id}",
        "events",
        "events/stream",
        "stats",
        "scans",
    ):
        assert f"/api/{path}" in paths
    assert "SearchResult" in json.dumps(paths["/api/search"])


def test_search_returns_finding_records_in_severity_order(analyst: TestClient) -> None:
    page = ok(analyst, "/api/search", q="")
    assert (page["total"], len(page["hits"])) == (7, 7)
    assert [h["severity"] for h in page["hits"]][:4] == ["critical", "critical", "critical", "high"]
    hit = page["hits"][0]
    for key in ("ip", "port", "protocol", "software", "auth", "exposed", "dataset", "collections", "pii"):
        assert key in hit
    for key in ("ransom", "severity", "summary", "time", "scan_id", "geo", "network", "id", "last_seen"):
        assert key in hit
    assert hit["pii"]["national_id"]["example"] == "3101**********123X"
    assert ok(analyst, f"/api/findings/{hit['id']}")["ip"] == hit["ip"]
    redis = ok(analyst, "/api/search", q="protocol:redis AND rows:>100", facets=1)
    assert places(redis["hits"]) == {MIXED}
    assert {"value": "redis", "count": 1} in redis["facets"]["protocol"]


def test_public_search_runs_over_the_visible_set(anon: TestClient) -> None:
    first = ok(anon, "/api/search", limit=2, facets=1)
    assert first["total"] == 4 and "withheld" not in first
    assert [f["value"] for f in first["facets"]["severity"]] == ["medium", "high", "info"]
    second = ok(anon, "/api/search", limit=2, offset=2)
    shown = first["hits"] + second["hits"]
    assert [h["severity"] for h in shown] == ["high", "medium", "medium", "info"]
    assert ok(anon, "/api/search", limit=2, offset=4)["hits"] == []
    critical = ok(anon, "/api/search", q="severity:critical", facets=1)
    assert (critical["total"], critical["hits"], critical["facets"]["severity"]) == (0, [], [])


@pytest.mark.parametrize(
    "query",
    [
        "protocol:(redis",
        "rows:>lots",
        "nosuchfield:1",
        "port:[1 TO",
        '"open',
        "age_days:>99999999999",
        "rows:>99999999999999999999999",
        "first_seen:>0000-01-01",
        'last_seen:<"9999-12-31T23:00:00-05:00"',
    ],
)
def test_bad_query_is_400_naming_the_column(anon: TestClient, query: str) -> None:
    response = anon.get("/api/search", params={"q": query})
    assert response.status_code == 400
    body = response.json()
    assert re.fullmatch(r"query error at column (\d+): .+", body["error"])
    assert body["error"].startswith(f"query error at column {body['position'] + 1}:")


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/search", {"limit": 0}),
        ("/api/search", {"limit": "many"}),
        ("/api/search", {"offset": -1}),
        ("/api/events", {"after": "x"}),
        ("/api/events", {"limit": 100000}),
        ("/api/events", {"type": "exploded"}),
        ("/api/events", {"ip": "999.1.1.1"}),
        ("/api/scans", {"limit": 0}),
        ("/api/hosts/not-an-ip", {}),
        ("/api/findings/abc", {}),
        ("/api/findings/99999999999999999999", {}),
        ("/api/events", {"after": 10**20}),
        ("/api/events/stream", {"type": "exploded"}),
        ("/api/events/stream", {"after": -1}),
    ],
)
def test_bad_parameters_are_400(anon: TestClient, url: str, params: dict[str, Any]) -> None:
    error(anon, url, 400, **params)


def test_host_page(analyst: TestClient, anon: TestClient) -> None:
    full = ok(analyst, f"/api/hosts/{MIXED[0]}")
    assert places(full["services"]) == {MIXED, (MIXED[0], 9200)}
    assert [p["rows"] for p in full["history"] if p["port"] == 6379] == [5000, 9000]
    public = ok(anon, f"/api/hosts/{MIXED[0]}")
    assert places(public["services"]) == {(MIXED[0], 9200)} and "withheld" not in public
    assert {p["port"] for p in public["history"]} == {9200}
    assert ok(analyst, "/api/hosts/127.0.9.5")["services"][0]["severity"] == "critical"
    assert error(anon, "/api/hosts/127.0.9.5", 404) == error(anon, "/api/hosts/127.0.9.99", 404)


def test_findings_of_critical_services_are_for_analysts(analyst: TestClient, anon: TestClient) -> None:
    history = ok(analyst, "/api/hosts/127.0.9.5")["history"]
    then_medium = next(p["id"] for p in history if p["severity"] == "medium")
    assert ok(analyst, f"/api/findings/{then_medium}")["severity"] == "medium"
    hidden = anon.get(f"/api/findings/{then_medium}")  # the service is critical now
    missing = anon.get("/api/findings/999999")
    assert (hidden.status_code, hidden.headers, hidden.content) == (
        missing.status_code,
        missing.headers,
        missing.content,
    )
    assert hidden.status_code == 404 and hidden.json() == {"error": "finding not in the index"}
    high = ok(analyst, "/api/search", q="severity:high")["hits"][0]["id"]
    assert ok(anon, f"/api/findings/{high}")["protocol"] == "mongodb"


def shown(store: Store, row_ids: list[int], kind: Kind = "event") -> list[int]:
    """The ids the web shows for these row ids."""
    return [public_ids(store, kind).encode(i) for i in row_ids]


def test_events_cursor_pages(synthetic: dict[str, Any], analyst: TestClient) -> None:
    every = shown(synthetic["store"], list(range(1, 11)))
    everything = ok(analyst, "/api/events", limit=1000)
    assert [e["id"] for e in everything["events"]] == every
    assert (everything["next"], everything["more"]) == (every[-1], False)
    seen, after, more = [], 0, True
    while more:
        page = ok(analyst, "/api/events", after=after, limit=3)
        seen += [e["id"] for e in page["events"]]
        after, more = page["next"], page["more"]
    assert seen == every
    assert ok(analyst, "/api/events", after=every[-1]) == {"events": [], "next": every[-1], "more": False}
    assert ok(analyst, "/api/events", after=every[4], limit=2)["events"] == everything["events"][5:7]
    chosen = ok(analyst, "/api/events", type="closed,wiped")["events"]
    assert [(e["ip"], e["type"]) for e in chosen] == [("127.0.9.4", "closed"), ("127.0.9.6", "wiped")]
    assert {e["port"] for e in ok(analyst, "/api/events", ip=MIXED[0])["events"]} == {6379, 9200}


def test_public_events_leave_out_critical_services(synthetic: dict[str, Any], anon: TestClient) -> None:
    visible = shown(synthetic["store"], PUBLIC_EVENTS)
    page = ok(anon, "/api/events")
    assert [e["id"] for e in page["events"]] == visible  # not the closed critical service's either
    assert (page["next"], page["more"]) == (visible[-1], False) and "withheld" not in page
    first = ok(anon, "/api/events", limit=2)  # a full page of visible events: the cursor is the last shown
    assert ([e["id"] for e in first["events"]], first["next"], first["more"]) == (
        visible[:2],
        visible[1],
        True,
    )
    assert ok(anon, "/api/events", ip="127.0.9.5") == {"events": [], "next": 0, "more": False}


def test_stats_and_scans(analyst: TestClient, anon: TestClient) -> None:
    stats = ok(anon, "/api/stats")
    assert stats == ok(analyst, "/api/stats")
    assert (stats["hosts"], stats["services"], stats["by_severity"]["critical"]) == (6, 7, 3)
    assert stats["events_by_type"]["closed"] == 1 and stats["last_scan"]["id"] == "s2"
    assert [s["id"] for s in ok(analyst, "/api/scans")] == ["s2", "s1"]
    assert ok(analyst, "/api/scans", limit=1)[0]["targets"] == "127.0.9.0/24"
    assert ok(anon, "/api/scans")[0]["targets"] is None


# --- keys and levels -----------------------------------------------------------------------------


def withheld(test: TestClient, **headers: str) -> int:
    """How many of the synthetic index's seven services the viewer does not see."""
    response = test.get("/api/search", headers=headers)
    assert response.status_code == 200, response.text
    return 7 - int(response.json()["total"])


def test_keys_set_the_level(synthetic: dict[str, Any], anon: TestClient) -> None:
    key = synthetic["analyst"]
    assert withheld(anon) == 3
    assert withheld(anon, **{"X-API-Key": synthetic["public"]}) == 3
    assert withheld(anon, **{"X-API-Key": key}) == 0
    assert withheld(anon, Authorization=f"Bearer {key}") == 0
    signed_in = TestClient(anon.app)
    assert signed_in.post("/login", data={"key": key}).status_code == 200  # the UI's session counts too
    assert withheld(signed_in) == 0
    assert TestClient(anon.app, cookies={"leaksonar_session": key}).get("/api/stats").status_code == 401
    assert (
        withheld(TestClient(anon.app, cookies={"leaksonar_key": key})) == 3
    )  # a key in a cookie is no sign-in
    open_app = client(synthetic["store"], anonymous="analyst")
    assert withheld(open_app) == 0
    for bad in ("lsk_wrong", synthetic["revoked"]):
        for test in (anon, open_app):
            response = test.get("/api/stats", headers={"X-API-Key": bad})
            assert response.status_code == 401
            assert response.json() == {"error": "unknown or revoked API key"}


def test_keys_command(new_index: Callable[[], str]) -> None:
    db = new_index()
    key = leaksonar_here("keys", "create", "alice", "--level", "analyst", "--db", db).stdout.strip()
    assert key.startswith("lsk_") and len(key) > 40
    listed = leaksonar_here("keys", "list", "--json", "--db", db).stdout
    assert key not in listed and key not in repr(index_contents(Store(db).engine))
    [alice] = json.loads(listed)
    assert (alice["name"], alice["level"], alice["revoked"]) == ("alice", "analyst", None)
    assert client(Store(db)).get("/api/stats", headers={"X-API-Key": key}).status_code == 200
    leaksonar_here("keys", "revoke", "alice", "--db", db)
    assert json.loads(leaksonar_here("keys", "list", "--json", "--db", db).stdout)[0]["revoked"]
    assert client(Store(db)).get("/api/stats", headers={"X-API-Key": key}).status_code == 401
    for args in (
        ("keys", "create", "alice"),  # the name stays taken
        ("keys", "create", "bob", "--level", "root"),
        ("keys", "create", "no spaces"),
        ("keys", "revoke", "alice"),  # already revoked
        ("serve", "--host", "localhost"),
        ("serve", "--anonymous", "admin"),
        ("serve", "--rate-limit", "5/fortnight"),
        ("serve", "--allowed-host", "evil.example/x"),
        ("serve", "--behind-proxy", "proxy.example"),
    ):
        refused = leaksonar_here(*args, "--db", db, check=False)  # none starts a server
        assert refused.returncode == 2, args
        assert refused.stderr.startswith("leaksonar: error: ") and refused.stderr.count("\n") == 1


def test_bad_settings_are_refused(synthetic: dict[str, Any]) -> None:
    for settings_ in (
        {"anonymous": "admin"},
        {"rate_limit": "10/fortnight"},
        {"poll_seconds": 0},
        {"allowed_hosts": ["evil.example/x"]},
    ):
        with pytest.raises(ValueError):
            create_app(synthetic["store"], **{"allowed_hosts": ["127.0.0.1"], **settings_})


def test_rate_limit_per_key(synthetic: dict[str, Any]) -> None:
    test = client(synthetic["store"], rate_limit="3/minute")
    assert [test.get("/api/stats").status_code for _ in range(3)] == [200] * 3
    refused = test.get("/api/stats")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    assert "rate limit" in refused.json()["error"]
    other = {"X-API-Key": synthetic["public"]}
    assert [test.get("/api/stats", headers=other).status_code for _ in range(4)] == [200] * 3 + [429]
    signed_in = TestClient(test.app, client=("127.0.0.9", 50000))
    assert signed_in.post("/login", data={"key": synthetic["analyst"]}).status_code == 200  # one request
    analyst = {"X-API-Key": synthetic["analyst"]}  # the key and its session share one bucket
    assert [signed_in.get("/api/stats").status_code for _ in range(2)] == [200] * 2
    assert test.get("/api/stats", headers=analyst).status_code == 429


def _answered(responses: list[httpx.Response]) -> int:
    return sum(r.status_code != 429 for r in responses)


def test_made_up_keys_and_cookies_are_counted_by_address(synthetic: dict[str, Any]) -> None:
    """An outside review got 700 of 700 answers with rotating random cookies where the address alone got
    109: an unknown key or session now counts against its address."""
    test = client(synthetic["store"], rate_limit="5/minute")
    made_up = [f"lsk_{n}" for n in range(20)]
    by_header = [test.get("/api/stats", headers={"X-API-Key": k}) for k in made_up]
    assert _answered(by_header) == 5 and {r.status_code for r in by_header[:5]} == {401}
    other = TestClient(test.app, client=("127.0.0.2", 50000))
    pages = []
    for k in made_up:
        other.cookies.set("leaksonar_session", k)
        pages.append(other.get("/"))
    other.cookies.clear()
    assert _answered(pages) == 5 and other.get("/api/stats").status_code == 429


def test_a_flood_of_bogus_keys_resets_no_bucket(
    synthetic: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made-up keys, 20 times as many as the limiter keeps clients: a depleted client stays limited and
    a valid key's holder keeps its bucket (20,000 of them: test_the_bucket_table_cannot_be_flooded...)."""
    monkeypatch.setattr("leaksonar.web.ratelimit.MAX_CLIENTS", 50)
    test = client(synthetic["store"], rate_limit="3/hour")
    victim = TestClient(test.app, client=("127.0.0.3", 50000))
    holder = {"X-API-Key": synthetic["public"]}
    assert _answered([victim.get("/api/stats") for _ in range(4)]) == 3
    assert _answered([test.get("/api/stats", headers=holder) for _ in range(2)]) == 2
    flood = TestClient(test.app, client=("127.0.0.4", 50000))
    assert _answered([flood.get("/api/stats", headers={"X-API-Key": f"lsk_{n}"}) for n in range(1000)]) == 3
    assert victim.get("/api/stats").status_code == 429
    assert _answered([test.get("/api/stats", headers=holder) for _ in range(2)]) == 1


def test_the_bucket_table_cannot_be_flooded_into_forgetting() -> None:
    """A client is forgotten only once its bucket has refilled; beyond MAX_CLIENTS busy clients,
    newcomers share one overflow bucket."""
    buckets = TokenBucket(3, 60.0, 1000)
    assert [buckets.take("victim", 0.0) == 0.0 for _ in range(4)] == [True] * 3 + [False]
    answered = sum(buckets.take(f"addr:{n}", 1.0) == 0.0 for n in range(20_000))
    assert answered == 999 + 3  # the table's other places, then the overflow bucket's burst
    assert buckets.take("victim", 2.0) > 0.0  # still depleted, still known
    assert buckets.take("newcomer", 2.0) > 0.0  # the overflow bucket is empty
    assert buckets.take("victim", 60.0) == 0.0 and buckets.take("newcomer", 62.0) == 0.0  # refilled ones go


# --- the access rule over every response ---------------------------------------------------------


def every_response(test: TestClient, ips: list[str], finding_ids: list[int]) -> dict[str, str]:
    """Every answer a viewer can get about the index, by URL."""
    urls = ["/api/search?limit=500&facets=1", "/api/search?q=severity:critical&limit=500", "/api/stats"]
    urls += ["/api/scans", "/api/events?limit=1000", "/openapi.json"]
    urls += [f"/api/hosts/{ip}" for ip in ips] + [f"/api/findings/{i}" for i in finding_ids]
    texts = {}
    for url in urls:
        response = test.get(url)
        assert response.status_code in (200, 404), (url, response.text)
        texts[url] = response.text
    return texts


def mentions(ip: str, text: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(ip)}(?![\d])", text) is not None


def assert_hidden(texts: dict[str, str], critical_only: set[str]) -> None:
    for url, text in texts.items():
        shown = [ip for ip in critical_only if mentions(ip, text)]
        assert not shown, f"{url} shows critical {shown}"


def test_public_never_sees_a_critical_address(synthetic: dict[str, Any], anon: TestClient) -> None:
    ids = list(range(1, 14))
    ips = [f"127.0.9.{n}" for n in range(1, 7)]
    texts = every_response(anon, ips, ids)
    assert_hidden(texts, set(CRITICAL_ONLY))
    assert MIXED not in places(json.loads(texts["/api/search?limit=500&facets=1"])["hits"])
    analyst_texts = every_response(client(synthetic["store"], anonymous="analyst"), ips, ids)
    assert all(mentions(ip, analyst_texts["/api/search?limit=500&facets=1"]) for ip in CRITICAL_ONLY)


def lab_views(scanned: dict[str, Any]) -> tuple[TestClient, TestClient, list[str], list[int]]:
    store = Store(str(scanned["db"]))
    analyst_view = client(store, anonymous="analyst")
    hits = ok(analyst_view, "/api/search", limit=500)["hits"]
    ids = [h["id"] for h in hits]
    ids += shown(
        store, [p.id for ip in {h["ip"] for h in hits} for p in store.findings.history(ip)], "finding"
    )
    return client(store), analyst_view, sorted({ip for ip, _ in scanned["records"]}), sorted(set(ids))


def test_lab_public_never_sees_a_critical_address(scanned: dict[str, Any]) -> None:
    public, analyst_view, ips, ids = lab_views(scanned)
    severities: dict[str, set[str]] = {}
    for record in scanned["records"].values():
        severities.setdefault(record["ip"], set()).add(record.get("severity") or "")
    critical_only = {ip for ip, found in severities.items() if found == {"critical"}}
    levels = set().union(*severities.values())
    assert critical_only and {"critical", "high", "info"} <= levels
    assert_hidden(every_response(public, ips, ids), critical_only)
    seen = ok(analyst_view, "/api/search", q="severity:critical", limit=500)["hits"]
    assert {h["ip"] for h in seen} >= critical_only


def occurring(values: set[str], text: str) -> list[str]:
    """The values that occur in `text`. Each lies inside a run of its alphabet: look only there."""
    alphabet = "".join(sorted(set("".join(values))))
    sizes = {len(v) for v in values}
    pieces = {
        run[i : i + size]
        for run in re.findall(f"[{re.escape(alphabet)}]+", text)
        for size in sizes
        for i in range(len(run) - size + 1)
    }
    return sorted(pieces & values)


def test_no_response_holds_a_seeded_identifier(scanned: dict[str, Any]) -> None:
    identifiers = seeded_identifiers()
    _public, analyst_view, ips, ids = lab_views(scanned)
    texts = every_response(analyst_view, ips, ids)
    assert "national_id" in texts["/api/search?limit=500&facets=1"]
    leaked = occurring(identifiers, "\n".join(texts.values()))
    assert not leaked, f"{len(leaked)} raw identifiers in API responses, e.g. {leaked[:1]}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=80) | st.from_regex(r"[a-z_]{1,10}:[\[\(\"*<>=!]?[\w .*]{0,12}[\]\)]?"))
def test_any_query_gives_results_or_a_clean_error(anon: TestClient, query: str) -> None:
    response = anon.get("/api/search", params={"q": query, "facets": 1})
    assert response.status_code in (200, 400), (query, response.text)
    if response.status_code == 400:
        assert response.json()["error"].startswith("query error at column")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=30), number=st.integers() | st.text(max_size=8))
def test_any_parameter_gives_an_answer_or_a_clean_error(anon: TestClient, text: str, number: Any) -> None:
    for url, params in (
        (f"/api/hosts/{quote(text, safe='')}", {}),
        (f"/api/findings/{quote(str(number), safe='')}", {}),
        ("/api/events", {"ip": text, "after": number}),
        ("/api/events", {"type": text, "limit": number}),
        ("/api/search", {"q": "", "offset": number}),
    ):
        response = anon.get(url, params=params)
        assert response.status_code in (200, 400, 404), (url, params, response.text)
        assert response.json()


# --- the live event stream -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving_app(app: FastAPI) -> Iterator[str]:
    """`app` served by uvicorn in a thread on a free loopback port (what a stream needs): its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def read_events(response: httpx.Response, count: int, deadline: float = 20.0) -> list[dict[str, Any]]:
    """The next `count` server-sent events (id and JSON data), and the comments seen as `": ..."`."""
    found: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    stop = time.monotonic() + deadline
    for line in response.iter_lines():
        assert time.monotonic() < stop, f"only {found} within {deadline} s"
        if line.startswith(":"):
            found.append({"comment": line})
        elif line.startswith("id:"):
            current["id"] = int(line[3:].strip())
        elif line.startswith("data:"):
            current["data"] = json.loads(line[5:].strip())
        elif not line and current:
            found.append(current)
            current = {}
        if sum("data" in f for f in found) >= count:
            break
    return found


@contextmanager
def serving(db: str, *options: str) -> Iterator[str]:
    """`leaksonar serve --db DB OPTIONS` on a free loopback port; its URL once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "leaksonar", "serve", "--db", db, "--port", str(port), *options]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        assert f"INFO leaksonar.serve: serving http://127.0.0.1:{port}/" in server.stderr.readline()
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/static/style.css", timeout=2)  # not rate-limited
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


@pytest.fixture
def served(new_index: Callable[[], str]) -> Iterator[dict[str, Any]]:
    """`leaksonar serve` on a free loopback port over a fresh synthetic index."""
    db = new_index()
    store = synthetic_store(db)
    key = create_key(store, "ana", "analyst")
    with serving(str(db)) as url:
        yield {"url": url, "store": store, "key": key}


def test_serve_trusts_forwarded_headers_only_from_a_named_proxy(new_index: Callable[[], str]) -> None:
    db = new_index()
    key = create_key(synthetic_store(db), "ana", "analyst")
    over_https = {"X-Forwarded-Proto": "https"}

    def answers(url: str) -> list[int]:
        return [
            httpx.get(f"{url}/api/stats", headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
            for n in range(4)
        ]

    with serving(str(db), "--rate-limit", "4/minute") as url:
        signed_in = httpx.post(f"{url}/login", data={"key": key}, headers=over_https)
        assert signed_in.status_code == 303 and "secure" not in signed_in.headers["set-cookie"].lower()
        assert answers(url) == [200, 200, 200, 429]  # one client, whatever it says it forwards
        rebound = {"Host": "evil.example:8181", "Origin": "http://evil.example:8181"}
        refused = httpx.post(f"{url}/login", data={"key": "x"}, headers=rebound)
        assert refused.status_code == 400 and refused.text.count("\n") == 0
        assert httpx.get(url, headers={"Host": "evil.example"}).status_code == 400
    with serving(str(db), "--rate-limit", "4/minute", "--behind-proxy", "127.0.0.1") as url:
        signed_in = httpx.post(f"{url}/login", data={"key": key}, headers=over_https)
        assert signed_in.status_code == 303 and "secure" in signed_in.headers["set-cookie"].lower()
        assert answers(url) == [200, 200, 200, 200]  # the proxy's clients, each by its own address


@pytest.mark.slow
def test_stream_delivers_new_events_live_and_resumes(served: dict[str, Any]) -> None:
    url, store, analyst_key = served["url"], served["store"], {"X-API-Key": served["key"]}
    timeout = httpx.Timeout(10.0)
    with httpx.stream("GET", f"{url}/api/events/stream", headers=analyst_key, timeout=timeout) as live:
        assert live.status_code == 200
        assert live.headers["content-type"].startswith("text/event-stream")
        record_scan(
            store,
            "s3",
            T3,
            [finding("127.0.9.2", 27017, "mongodb", "high", 5000, "s3", T3, "phone")],
            "127.0.9.2/32",
        )
        [event] = [e for e in read_events(live, 1) if "data" in e]
    assert [event["id"], event["data"]["id"]] == shown(store, [11, 11])
    assert (event["data"]["ip"], event["data"]["type"]) == ("127.0.9.2", "grew")
    resume = {**analyst_key, "Last-Event-ID": str(shown(store, [10])[0])}
    with httpx.stream("GET", f"{url}/api/events/stream", headers=resume, timeout=timeout) as again:
        assert [e["id"] for e in read_events(again, 1) if "data" in e] == [event["id"]]
    with httpx.stream("GET", f"{url}/api/events/stream?after=0", timeout=timeout) as public:
        streamed = [e for e in read_events(public, len(PUBLIC_EVENTS) + 1) if "data" in e]
    assert [e["id"] for e in streamed] == shown(store, [*PUBLIC_EVENTS, 11])
    assert not any(ip in json.dumps(streamed) for ip in CRITICAL_ONLY)
    assert httpx.get(f"{url}/api/events/stream", headers={"X-API-Key": "bad"}).status_code == 401


@pytest.mark.slow
def test_stream_sends_heartbeats(synthetic: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "HEARTBEAT_SECONDS", 1)
    app = create_app(synthetic["store"], allowed_hosts=["127.0.0.1"], poll_seconds=0.2)
    with serving_app(app) as base, httpx.stream("GET", f"{base}/api/events/stream", timeout=5.0) as quiet:
        lines = []
        for line in quiet.iter_lines():
            lines.append(line)
            if line.startswith(":"):
                break
    assert lines[-1].startswith(": ping") and not any(line.startswith("data:") for line in lines)
