"""The access rule for public viewers (docs/web.md, Access): every public answer runs over the visible set.

The property: for a random small index and random queries of the query language, every public answer
(search page and total, facets, events and their cursor, a finding by id, a host, the scans, the UI's
search, host, event and letter preview pages) with a critical service in the index equals the answer
with that service, and every finding and event of it, left out of the index. Ids are compared by what
they stand for: each index numbers its own rows and shows them through its own keyed permutation
(leaksonar.web.ids), so the numbers of two indexes differ as two draws of random numbers do, whatever
they hold; the tests of public ids below show that no row id, and so no gap between row ids, reaches a
public viewer. Then the reproductions of the review (issue 13, defects 2 and 4), each an attack that
once told the two indexes apart, and what the property cannot see: a visible service's own critical
past (in both indexes alike)."""

from __future__ import annotations

import asyncio
import html
import ipaddress
import itertools
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaksonar.model import (
    EVENT_TYPES,
    SEVERITIES,
    Assessment,
    Collection,
    Finding,
    PiiHit,
    RansomNote,
    Software,
)
from leaksonar.store.db import Store
from leaksonar.web.access import public_ids
from leaksonar.web.app import create_app
from leaksonar.web.ids import LARGEST, PublicIds

IPS = ("127.0.0.1", "127.0.0.2", "127.0.1.7", "127.0.2.200", "127.0.3.9")
PORTS = (5432, 6379, 9200, 27017)
SPACE = "127.0.0.0/22"
SCANS = (("s1", "2026-11-01T00:00:00Z"), ("s2", "2026-11-10T00:00:00Z"), ("s3", "2026-11-20T00:00:00Z"))
PROTOCOLS = ("redis", "mongodb", "elasticsearch", "postgresql")
SOFTWARE = ("redis", "mongodb", "opensearch", "PostgreSQL")
PII = ("name", "phone", "national_id", "passport", "email")
BTC = ("1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "3J98t1WpEZ73CNmQviecrnyi")
COLLECTIONS = ("person", "orders", "users", "read_me")
COUNTRIES = ("CN", "US")
UNLIMITED = "1000000/minute"
MISSING_ID = 10**6
"""A public id of a finding or event that neither index holds (but for odds of about 2**-45)."""

Place = tuple[str, int]
Observation = dict[str, Any]
Index = dict[Place, list[Observation | None]]
"""A service's observation in each scan (None: not seen by that scan)."""


# --- building indexes through the store ----------------------------------------------------------


def finding(ip: str, port: int, scan_id: str, time: str, seen: Observation) -> Finding:
    rows = seen["rows"]
    pii = {c: PiiHit(20, 20, ("f",), "***") for c in seen["pii"]}
    notes = (RansomNote("database read_me", "pay", tuple(seen["btc"])),) if seen["btc"] else ()
    collections = tuple(
        Collection("db", name, rows, rows * 10, ("xm", "sfzh")) for name in seen["collections"]
    )
    return Finding(
        ip=ip,
        port=port,
        protocol=seen["protocol"],
        software=Software(seen["software"], "1.0"),
        auth="required" if seen["severity"] == "info" else "none",
        exposed=seen["severity"] != "info",
        time=time,
        scan_id=scan_id,
        databases=1,
        rows=rows,
        size_bytes=rows * 10,
        collections=collections,
        assessment=Assessment(
            pii, {}, bool(notes), notes, seen["severity"], f"{seen['protocol']} {seen['severity']} summary"
        ),
        geo={"country": seen["country"]},
        network={"asn": seen["asn"], "org": "Example Net"},
    )


def fill(store: Store, index: Index) -> Store:
    """Three finished scans of SPACE with the index's observations, and their events."""
    block = ipaddress.IPv4Network(SPACE)
    coverage = {"intervals": [[int(block[0]), int(block[-1])]], "ports": list(PORTS)}
    for number, (scan_id, time) in enumerate(SCANS):
        store.scans.begin(scan_id, time, SPACE, "5432,6379,9200,27017", 4 * block.num_addresses, {}, coverage)
        found = [
            finding(ip, port, scan_id, time, seen)
            for (ip, port), observations in sorted(index.items())
            if (seen := observations[number]) is not None
        ]
        store.findings.add(found)
        exposed = sum(f.exposed for f in found)  # the scan's counts, as a scan records them
        store.scans.finish(scan_id, time, "done", open_ports=len(found), services=len(found), exposed=exposed)
        store.events.record(scan_id)
    return store


@pytest.fixture(scope="module")
def empty_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated SQLite index: copied for each example (migrating costs more than the test)."""
    path = tmp_path_factory.mktemp("empty") / "index.db"
    Store(str(path)).close()
    return path


@pytest.fixture(scope="module")
def new_store(empty_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Store]]:
    made: list[Store] = []

    def new() -> Store:
        path = tmp_path_factory.mktemp("index") / "index.db"
        shutil.copy(empty_index, path)
        made.append(Store(str(path)))
        return made[-1]

    yield new
    for store in made:
        store.close()


class Client:
    """A client of the web app over `store` (a public viewer's, unless `anonymous` says otherwise): GET as
    TestClient does it (its base URL and user agent, redirects followed, an error of the app raised), the
    app run on one event loop in this thread, with no server thread to hand each request to and back (the
    property's thousands of requests take a quarter less CPU)."""

    def __init__(self, store: Store, anonymous: str = "public") -> None:
        app = create_app(store, allowed_hosts=["testserver"], anonymous=anonymous, rate_limit=UNLIMITED)
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"user-agent": "testclient"},
            follow_redirects=True,
        )

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.get(url, **kwargs))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


# --- answers, with the ids that differ between two indexes named by what they stand for ----------


class Names:
    """The public finding and event ids of one index -> what they stand for (scan, address, port, type)."""

    def __init__(self, store: Store) -> None:
        findings, events = public_ids(store, "finding"), public_ids(store, "event")
        self.findings: dict[int, str] = {}
        for ip in IPS:
            for point in store.findings.history(ip):
                self.findings[findings.encode(point.id)] = f"finding {point.scan_id} {ip}:{point.port}"
        self.events = {
            events.encode(e.id or 0): f"event {e.scan_id} {e.ip}:{e.port} {e.type}"
            for e in store.events.find()
        }

    def named(self, value: Any, ids: dict[int, str] | None = None) -> Any:
        """`value` (JSON) with the ids in it replaced by their names."""
        if isinstance(value, list):
            return [self.named(v, ids) for v in value]
        if not isinstance(value, dict):
            return value
        if ids is None and "type" in value and "before" in value:
            ids = self.events
        named = {k: self.named(v, ids) for k, v in value.items()}
        if isinstance(value.get("id"), int):
            named["id"] = (ids or self.findings).get(value["id"], value["id"])
        return named

    def page(self, html: str) -> str:
        """A UI page with its event ids named (and what differs on every answer left out: pygal's random
        chart id, a script nonce)."""
        html = re.sub(
            r"(event-|/event/|data-after=\")(\d+)", lambda m: m[1] + self.events.get(int(m[2]), m[2]), html
        )
        return re.sub(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|nonce=\"[^\"]*\"", "", html
        )


def named(names: Names, found: Any) -> Any:
    """A JSON answer with its ids (and an event cursor `next`) named."""
    found = names.named(found)
    if isinstance(found, dict) and isinstance(found.get("next"), int):
        found["next"] = names.events.get(found["next"], found["next"])
    return found


def api(test: Client, names: Names, url: str, **params: Any) -> tuple[int, Any]:
    response = test.get(url, params=params)
    assert response.status_code in (200, 400, 404), (url, params, response.text)
    return response.status_code, named(names, response.json())


def events_by_cursor(test: Client, names: Names, limit: int, **filters: Any) -> list[Any]:
    """Every page of /api/events followed by its cursor, named."""
    pages, after = [], 0
    while True:
        page = test.get("/api/events", params={"after": after, "limit": limit, **filters}).json()
        pages.append(named(names, page))
        if not page["more"]:
            return pages
        after = page["next"]


def public_answers(
    store: Store, queries: list[tuple[str, int, int]], probes: dict[str, Any]
) -> dict[str, Any]:
    """Every public answer the test compares, by what was asked. `probes`: finding and event names to
    ask for by id (an id this index does not hold is asked as MISSING_ID)."""
    with Client(store) as test:
        return _answers(test, Names(store), queries, probes)


def _answers(
    test: Client, names: Names, queries: list[tuple[str, int, int]], probes: dict[str, Any]
) -> dict[str, Any]:
    finding_ids = {name: i for i, name in names.findings.items()}
    event_ids = {name: i for i, name in names.events.items()}
    found: dict[str, Any] = {}
    for q, limit, offset in queries:
        found[f"search {q!r} {limit} {offset}"] = api(
            test, names, "/api/search", q=q, limit=limit, offset=offset, facets=1
        )
        page = test.get("/search", params={"q": q})
        found[f"ui search {q!r}"] = (page.status_code, names.page(page.text))
    for limit in (1, 1000):
        found[f"events {limit}"] = events_by_cursor(test, names, limit)
    for ip in IPS:
        found[f"host {ip}"] = api(test, names, f"/api/hosts/{ip}")
        page = test.get(f"/host/{ip}")
        found[f"ui host {ip}"] = (page.status_code, names.page(page.text))
        found[f"events on {ip}"] = events_by_cursor(test, names, 2, ip=ip)
        page = test.get(f"/host/{ip}/report")
        found[f"report {ip}"] = (page.status_code, names.page(page.text))
    for kind in ("closed", "new_exposure"):
        found[f"events {kind}"] = events_by_cursor(test, names, 1000, type=kind)
    found["dashboard events"] = names.page(test.get("/").text.split('id="events-h"')[1])
    found["scans"] = api(test, names, "/api/scans")
    for name in probes["findings"]:
        response = test.get(f"/api/findings/{finding_ids.get(name, MISSING_ID)}")
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}  # ids differ in length
        found[name] = (response.status_code, headers, names.named(response.json()))
    for name in probes["events"]:
        asked = event_ids.get(name, MISSING_ID)
        response = test.get(f"/event/{asked}", follow_redirects=False)
        shown = response.headers.get("location") or response.text.replace(f"no event {asked}", "no event ID")
        found[name] = (response.status_code, names.page(shown))
    return found


# --- strategies ----------------------------------------------------------------------------------

observations = st.fixed_dictionaries(
    {
        "severity": st.sampled_from(SEVERITIES),
        "rows": st.integers(0, 10**7),
        "protocol": st.sampled_from(PROTOCOLS),
        "software": st.sampled_from(SOFTWARE),
        "pii": st.lists(st.sampled_from(PII), max_size=2, unique=True),
        "btc": st.lists(st.sampled_from(BTC), max_size=2, unique=True),
        "collections": st.lists(st.sampled_from(COLLECTIONS), max_size=2, unique=True),
        "country": st.sampled_from(COUNTRIES),
        "asn": st.sampled_from((64500, 64501)),
    }
)


@st.composite
def indexes(draw: st.DrawFn) -> tuple[Index, Place]:
    """A few services seen by some of three scans, and one of them whose latest state is critical."""
    places = draw(
        st.lists(st.tuples(st.sampled_from(IPS), st.sampled_from(PORTS)), min_size=2, max_size=6, unique=True)
    )
    index: Index = {}
    for place in places:
        seen = draw(st.lists(st.none() | observations, min_size=len(SCANS), max_size=len(SCANS)))
        if all(s is None for s in seen):
            seen[-1] = draw(observations)
        index[place] = seen
    target = draw(st.sampled_from(places))
    last = max(i for i, s in enumerate(index[target]) if s is not None)
    index[target][last] = {**index[target][last], "severity": "critical"}  # type: ignore[dict-item]
    return index, target


def _range(field: str, low: int, high: int) -> str:
    return f"{field}:[{min(low, high)} TO {max(low, high)}]"


numbers = st.integers(0, 10**7)
terms = st.one_of(
    st.sampled_from(IPS).map(lambda ip: f"ip:{ip}"),
    st.sampled_from(IPS).map(lambda ip: "ip:" + ip.rsplit(".", 1)[0] + ".*"),
    st.sampled_from(("127.0.0.0/23", "127.0.2.0/24", "127.0.0.0/31", "127.0.0.1-127.0.1.255")).map(
        "ip:{}".format
    ),
    st.tuples(st.sampled_from(IPS), st.sampled_from(IPS)).map(lambda ab: f"ip:[{min(ab)} TO {max(ab)}]"),
    st.sampled_from(PORTS).map("port:{}".format),
    st.tuples(st.sampled_from(PORTS), st.sampled_from(PORTS)).map(lambda ab: _range("port", *ab)),
    st.sampled_from((*PROTOCOLS, "mongo*", "postgre?ql", "*")).map("protocol:{}".format),
    st.sampled_from((*SOFTWARE, "open*", "postgresql")).map("software:{}".format),
    st.sampled_from((*SEVERITIES, ">=high", ">medium", "<=critical", "[low TO critical]", "*")).map(
        "severity:{}".format
    ),
    st.sampled_from((*PII, "*")).map("pii:{}".format),
    numbers.map(lambda n: f"rows:>{n}"),
    st.tuples(numbers, numbers).map(lambda ab: _range("rows", *ab)),
    st.sampled_from((*COLLECTIONS, "0", "1", "2", ">1", "[1 TO 2]", "*")).map("collections:{}".format),
    st.sampled_from((*BTC, "1B*", "1Bo*", "3*", "*")).map("btc:{}".format),
    st.sampled_from(("infected", "exposed")).flatmap(lambda f: st.sampled_from((f"{f}:true", f"{f}:false"))),
    st.sampled_from(COUNTRIES).map("country:{}".format),
    st.sampled_from(("64500", "AS64501", "[64500 TO 64501]")).map("asn:{}".format),
    st.sampled_from(("first_seen:>=2026-11-10", "last_seen:<2026-11-20", "age_days:>3")),
    st.sampled_from((*EVENT_TYPES, "*")).map("event:{}".format),
    st.sampled_from(("person", "orders", "summary", "critical", "redis", "read*")),
)
queries = st.recursive(
    terms,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(" AND ".join),
        st.tuples(inner, inner).map(" OR ".join),
        inner.map("NOT {}".format),
        inner.map("-{}".format),
        inner.map("({})".format),
    ),
    max_leaves=4,
)
pages = st.tuples(st.just("") | queries, st.sampled_from((1, 2, 50)), st.sampled_from((0, 1, 3)))


# --- the property --------------------------------------------------------------------------------


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=indexes(), asked=st.lists(pages, min_size=4, max_size=8))
def test_a_critical_service_changes_no_public_answer(
    new_store: Callable[[], Store], drawn: tuple[Index, Place], asked: list[tuple[str, int, int]]
) -> None:
    index, target = drawn
    with_it = fill(new_store(), index)
    without = fill(new_store(), {place: seen for place, seen in index.items() if place != target})
    known = Names(with_it)
    probes = {"findings": sorted(known.findings.values()), "events": sorted(known.events.values())}
    assert any(target[0] in name for name in probes["findings"])
    assert public_answers(with_it, asked, probes) == public_answers(without, asked, probes)


# --- the review's reproductions (issue 13, defect 4) ---------------------------------------------

SEEN = {"rows": 970_000, "pii": [], "btc": [], "collections": [], "country": "CN", "asn": 64500}
CRITICAL = ("127.0.1.7", 9200)
"""Alone on its host: an attacked Elasticsearch with passports, critical since the second scan."""
REVIEWED: Index = {
    CRITICAL: [
        {**SEEN, "severity": "high", "protocol": "elasticsearch", "software": "opensearch", "pii": ["name"]},
        None,
        {
            **SEEN,
            "severity": "critical",
            "protocol": "elasticsearch",
            "software": "opensearch",
            "pii": ["passport", "name"],
            "btc": [BTC[0]],
            "collections": ["person", "read_me"],
        },
    ],
    ("127.0.0.1", 27017): [
        None,
        {
            **SEEN,
            "severity": "high",
            "protocol": "mongodb",
            "software": "mongodb",
            "pii": ["phone"],
            "rows": 800,
        },
        None,
    ],
    ("127.0.0.2", 6379): [
        {**SEEN, "severity": "medium", "protocol": "redis", "software": "redis", "rows": 10}
    ]
    * 3,
}


@pytest.fixture(scope="module")
def reviewed(new_store: Callable[[], Store]) -> Iterator[dict[str, Any]]:
    """The reviewed index with the critical service, and without it; public clients of both."""
    with_it = fill(new_store(), REVIEWED)
    without = fill(new_store(), {p: s for p, s in REVIEWED.items() if p != CRITICAL})
    with Client(with_it) as seeing, Client(without) as blind:
        yield {"with": (seeing, Names(with_it), with_it), "without": (blind, Names(without), without)}


def both(reviewed: dict[str, Any], url: str, **params: Any) -> tuple[int, Any]:
    """The public answer to `url`, the same with the critical service as without it."""
    answers = [api(test, names, url, **params) for test, names, _ in (reviewed["with"], reviewed["without"])]
    assert answers[0] == answers[1], url
    assert CRITICAL[0] not in str({k: v for k, v in answers[0][1].items() if k != "query"})
    return answers[0]


@pytest.mark.parametrize(
    "q", ["", "severity:critical", "protocol:elasticsearch", "pii:passport", "infected:true"]
)
def test_facets_and_totals_leave_the_critical_service_out(reviewed: dict[str, Any], q: str) -> None:
    _, page = both(reviewed, "/api/search", q=q, facets=1)
    facets = {f["value"] for values in page["facets"].values() for f in values}
    assert not facets & {"elasticsearch", "opensearch", "passport", "critical"} and "withheld" not in page


@pytest.mark.parametrize(
    "q",
    [
        "btc:1B*",
        "btc:1Bo*",
        f"btc:{BTC[0]}",
        "collections:person",
        "collections:read_me",
        "collections:2",
        "port:9200",
        "rows:[900000 TO 1000000]",
        "rows:>969999",
        "software:open*",
    ],
)
def test_fields_cannot_be_read_through_filters(reviewed: dict[str, Any], q: str) -> None:
    assert both(reviewed, "/api/search", q=q, facets=1)[1]["total"] == 0


@pytest.mark.parametrize(
    "q",
    [
        "ip:127.0.0.0/22",
        "ip:127.0.0.0/23",
        "ip:127.0.1.0/24",
        "ip:127.0.1.0/29",
        "ip:127.0.1.4-127.0.1.7",
        "ip:127.0.1.7",
        "ip:127.0.1.*",
        "ip:[127.0.1.0 TO 127.0.1.255]",
        "NOT ip:127.0.0.0/24",
        "ip:127.0.0.0/22 AND NOT ip:127.0.0.0/24",
        "ip:127.0.1.7 OR port:6379",
    ],
)
def test_an_address_cannot_be_bisected(reviewed: dict[str, Any], q: str) -> None:
    both(reviewed, "/api/search", q=q, facets=1, limit=500)


def test_events_and_their_cursor_skip_the_critical_service(reviewed: dict[str, Any]) -> None:
    test, names, store = reviewed["with"]
    assert any(e.ip == CRITICAL[0] for e in store.events.find())
    assert both(reviewed, "/api/events", ip=CRITICAL[0]) == (200, {"events": [], "next": 0, "more": False})
    for limit in (1, 2, 1000):
        assert events_by_cursor(test, names, limit) == events_by_cursor(*reviewed["without"][:2], limit)
    assert both(reviewed, "/api/events", type="new_exposure,ransom_note_appeared,closed")[0] == 200


def test_a_critical_finding_answers_as_a_missing_one(reviewed: dict[str, Any]) -> None:
    test, _, store = reviewed["with"]
    hidden = [p.id for p in store.findings.history(CRITICAL[0])]
    critical_event = next(e.id for e in store.events.find() if e.ip == CRITICAL[0])
    missing = test.get(f"/api/findings/{MISSING_ID}")
    for finding_id in hidden:  # the high first observation too: its service is critical now
        found = test.get(f"/api/findings/{finding_id}")
        assert (found.status_code, found.headers, found.content) == (
            missing.status_code,
            missing.headers,
            missing.content,
        )
    assert missing.status_code == 404
    for url in (f"/api/hosts/{CRITICAL[0]}", f"/host/{CRITICAL[0]}", f"/host/{CRITICAL[0]}/report"):
        unknown = test.get(url.replace(CRITICAL[0], "127.0.3.3"))
        found = test.get(url)
        assert (found.status_code, found.text) == (
            unknown.status_code,
            unknown.text.replace("127.0.3.3", CRITICAL[0]),
        )
    event_page = test.get(f"/event/{critical_event}", follow_redirects=False)
    assert event_page.status_code == 404 and CRITICAL[0] not in event_page.text


def letter_events(page: str) -> list[str]:
    """The events a disclosure letter lists ("Changes we observed")."""
    return [html.unescape(line) for line in re.findall(r"<li>(\d{4}-\d\d-\d\dT[^<]*)</li>", page)]


def test_the_letter_preview_lists_only_visible_events(new_store: Callable[[], Store]) -> None:
    """A service that was critical and is high now: its letter is public, its critical past is not."""
    place = ("127.0.2.200", 27017)
    was = {**SEEN, "protocol": "mongodb", "software": "mongodb", "collections": ["person"]}
    store = fill(
        new_store(),
        {
            place: [
                {**was, "severity": "critical", "pii": ["passport", "name"]},
                {**was, "severity": "high", "pii": ["name"], "rows": 500},
                {**was, "severity": "high", "pii": ["name"], "rows": 500},
            ]
        },
    )
    every = store.events.find(ip=place[0], port=place[1])
    shown = store.events.find(ip=place[0], port=place[1], public=True)
    assert {e.severity for e in every} - {e.severity for e in shown} == {"critical"} and shown
    lines = {
        kind: [f"{e.time}: {e.type}: {e.summary}" for e in found]
        for kind, found in (("all", every), ("public", shown))
    }
    for anonymous, expected in (("analyst", lines["all"]), ("public", lines["public"])):
        with Client(store, anonymous) as test:
            letter = test.get(f"/host/{place[0]}/report")
        assert letter.status_code == 200
        assert sorted(letter_events(letter.text)) == sorted(expected), anonymous


def test_a_scan_does_not_count_what_it_found_for_the_public(reviewed: dict[str, Any]) -> None:
    """Per scan, `exposed` less the visible findings of that scan would count its critical services: a
    scan of one address would locate one. Public: neither what a scan targeted nor what it found."""
    answers = [api(test, names, "/api/scans") for test, names, _ in (reviewed["with"], reviewed["without"])]
    assert answers[0] == answers[1]
    scans = answers[0][1]
    assert [s["id"] for s in scans] == ["s3", "s2", "s1"]
    for field in ("targets", "ports", "open_ports", "services", "exposed"):
        assert {s[field] for s in scans} == {None}, field
    assert {s["size"] for s in scans} == {4 * 1024}
    with Client(reviewed["with"][2], "analyst") as test:
        assert [s["exposed"] for s in test.get("/api/scans").json()] == [2, 2, 2]


# --- public ids (defect 2): row ids are counters stored in address order, so their gaps would locate
# the hidden rows; the web shows a keyed permutation of them instead ----------------------------------


def every_public_id(test: Client) -> dict[str, set[int]]:
    """Every finding id, and every event id and cursor, a public viewer can read anywhere."""
    events: set[int] = set()
    after = 0
    while True:  # a page of one: every cursor
        page = test.get("/api/events", params={"after": after, "limit": 1}).json()
        events |= {e["id"] for e in page["events"]} | {page["next"]}
        if not page["more"]:
            break
        after = page["next"]
    findings = {h["id"] for h in test.get("/api/search", params={"limit": 500}).json()["hits"]}
    for ip in IPS:
        host = test.get(f"/api/hosts/{ip}").json()
        findings |= {p["id"] for p in host.get("history", [])} | {s["id"] for s in host.get("services", [])}
        events |= {int(n) for n in re.findall(r"(?:event-|/event/)(\d+)", test.get(f"/host/{ip}").text)}
    events |= {int(n) for n in re.findall(r"(?:/event/|data-after=\")(\d+)", test.get("/").text)}
    return {"finding": findings, "event": events - {0}}


def test_public_ids_hold_no_row_id_and_so_no_gap(reviewed: dict[str, Any]) -> None:
    test, _, store = reviewed["with"]
    rows = [e.id for e in store.events.find()]
    hidden = [e.id for e in store.events.find() if e.ip == CRITICAL[0]]
    assert any(min(rows) < i < max(set(rows) - set(hidden)) for i in hidden)  # a hidden event between two
    seen = every_public_id(test)
    visible = {
        "event": {e.id for e in store.events.find(public=True)},
        "finding": {p.id for ip in IPS for p in store.findings.history(ip, public=True)},
    }
    finding_rows = {p.id for ip in IPS for p in store.findings.history(ip)}
    for kind, ids in seen.items():
        assert ids and not ids & (set(rows) | finding_rows)
        assert {public_ids(store, kind).decode(i) for i in ids} == visible[kind]  # each a visible row's


def test_public_ids_are_a_keyed_permutation_below_2_52() -> None:
    ids, other = PublicIds(bytes(32), "event"), PublicIds(bytes(31) + b"\x01", "event")
    rows = [*range(1, 2001), LARGEST - 1, LARGEST]
    shown = [ids.encode(i) for i in rows]
    assert all(0 < n <= LARGEST < 2**53 for n in shown) and len(set(shown)) == len(rows)
    assert [ids.decode(n) for n in shown] == rows
    assert [other.encode(i) for i in rows[:50]] != shown[:50]
    assert [PublicIds(bytes(32), "finding").encode(i) for i in rows[:50]] != shown[:50]  # kinds differ
    rising = sum(a < b for a, b in itertools.pairwise(shown[:2000]))
    assert 900 < rising < 1100  # consecutive rows: no order, no gap to read
    for number in (0, -1, LARGEST + 1, 2**63 - 1):
        assert ids.decode(number) is None
    with pytest.raises(ValueError):
        ids.encode(LARGEST + 1)


def test_an_index_keeps_its_key(new_store: Callable[[], Store]) -> None:
    first, second = new_store(), new_store()
    again = Store(first.db)
    assert [public_ids(again, "event").encode(1), public_ids(again, "finding").encode(1)] == [
        public_ids(first, "event").encode(1),
        public_ids(first, "finding").encode(1),
    ]
    assert public_ids(first, "event").encode(1) != public_ids(second, "event").encode(1)
    again.close()


def test_cursors_and_ids_that_are_no_public_id_answer_as_unknown(reviewed: dict[str, Any]) -> None:
    test, names, store = reviewed["with"]
    missing = test.get(f"/api/findings/{MISSING_ID}")
    foreign = next(iter(reviewed["without"][1].findings))  # the other index's key: a random row here
    for number in (2**52, 2**63 - 1, foreign, public_ids(store, "finding").encode(MISSING_ID)):
        found = test.get(f"/api/findings/{number}")
        assert (found.status_code, found.json()) == (404, missing.json())
        page = test.get(f"/event/{number}", follow_redirects=False)
        assert page.status_code == 404 and f"no event {number}" in page.text
    an_event, a_finding = next(iter(names.events)), next(iter(names.findings))  # each kind its own ids
    assert test.get(f"/api/findings/{an_event}").json() == missing.json()
    assert test.get(f"/event/{a_finding}", follow_redirects=False).status_code == 404
    assert test.get("/api/events", params={"after": 2**52}).json() == {
        "events": [],
        "next": 2**52,
        "more": False,
    }
    everything = test.get("/api/events", params={"limit": 1000}).json()["events"]
    middle = everything[1]["id"]
    assert test.get("/api/events", params={"after": middle}).json()["events"] == everything[2:]
    assert names.events[middle].startswith("event ")


def test_a_hidden_service_does_not_choose_the_owner_of_the_letter_preview(
    new_store: Callable[[], Store],
) -> None:
    """One address, two owners (ASNs): the preview shows the letter of the lowest visible port, so a critical
    service of one owner on a lower port does not swap the letter a public viewer gets."""
    ip = "127.0.2.200"
    seen = {**SEEN, "protocol": "redis", "software": "redis", "severity": "high"}
    index: Index = {
        (ip, 5432): [None, None, {**seen, "severity": "critical", "pii": ["name"], "asn": 64501}],
        (ip, 6379): [None, None, {**seen, "asn": 64500}],
        (ip, 27017): [None, None, {**seen, "asn": 64501}],
    }
    letters = []
    for kept in (index, {place: s for place, s in index.items() if place[1] != 5432}):
        with Client(fill(new_store(), kept)) as test:
            page = test.get(f"/host/{ip}/report")
        assert page.status_code == 200
        letters.append(page.text)
    assert letters[0] == letters[1] and "AS64500" in letters[0]
