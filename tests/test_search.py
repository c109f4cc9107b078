"""Search: the query language (every field and operator), injection attempts, errors with positions, a
fuzz, facets and read views over synthetic findings; queries on the real lab scan; the CLI; an index
made by the previous release becoming searchable."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaksonar.model import Assessment, Collection, Finding, PiiHit, RansomNote, Software
from leaksonar.store import search
from leaksonar.store.db import Store
from leaksonar.store.query import FACET_FIELDS, FIELDS, MAX_LENGTH, QueryError
from leaksonar.store.rows import SearchPage
from tests.conftest import index_contents, leaksonar

NOW = datetime(2026, 11, 28, tzinfo=UTC)
FIRST, SECOND = "2026-10-01T00:00:00Z", "2026-11-20T06:00:00Z"
BTC = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"


def finding(
    ip: str,
    port: int,
    protocol: str,
    severity: str,
    *,
    time: str = FIRST,
    software: tuple[str, str | None] | None = None,
    auth: str = "none",
    rows: int | None = None,
    size: int | None = None,
    pii: tuple[str, ...] = (),
    collections: tuple[tuple[str, tuple[str, ...]], ...] = (),
    btc: tuple[str, ...] = (),
    infected: bool = False,
    country: str | None = None,
    asn: int | None = None,
    org: str | None = None,
    summary: str = "",
) -> Finding:
    notes = (RansomNote("index read_me", "send BTC to recover", btc, (), 10.0),) if infected else ()
    return Finding(
        ip=ip,
        port=port,
        protocol=protocol,
        software=Software(*software) if software else None,
        auth=auth,  # type: ignore[arg-type]
        exposed=auth == "none",
        time=time,
        scan_id="s2" if time == SECOND else "s1",
        rows=rows,
        size_bytes=size,
        collections=tuple(Collection("db", name, 10, 100, fields) for name, fields in collections),
        assessment=Assessment(
            pii={c: PiiHit(3, 5, ("f",), "***") for c in pii},
            collection_pii={},
            infected=infected,
            notes=notes,
            severity=severity,  # type: ignore[arg-type]
            summary=summary,
        ),
        geo={"country": country} if country else None,
        network={"asn": asn, "org": org} if asn else None,
    )


POLICE = finding(
    "127.1.0.1", 9200, "elasticsearch", "critical", software=("opensearch", "2.11.0"), rows=2_000_000,
    size=5_000_000_000, pii=("national_id", "name", "phone"), collections=(("person", ("xm", "sfzh")),
    ("case_files", ("ajbh",))), country="CN", asn=64500, org="Example Net",
    summary="police person index: 2,000,000 documents with national IDs",
)  # fmt: skip
CACHE = finding(
    "127.1.0.2", 6379, "redis", "high", software=("redis", "7.0.15"), rows=50, size=4000, pii=("phone",),
    collections=(("db0", ()),), btc=(BTC,), infected=True, country="US", asn=64501, org="Acme Hosting",
    summary="redis with a ransom note",
)  # fmt: skip
SHOP = finding(
    "127.1.0.3", 27017, "mongodb", "medium", software=("mongodb", "6.0.4"), rows=1000, size=1_000_000,
    collections=(("orders", ("total", "sku")),), country="DE", asn=64502, org="Beispiel GmbH",
    summary="orders, no personal data",
)  # fmt: skip
LOCKED = finding(
    "127.1.1.4", 5432, "postgresql", "info", software=("postgresql", "15.4"), auth="required", country="CN",
    asn=64500, org="Example Net", summary="password required",
)  # fmt: skip
CRM = finding(
    "127.1.0.6", 3306, "mysql", "high", software=("MariaDB", "10.11.6"), rows=150_000, size=20_000_000,
    pii=("email",), collections=(("customers", ("email", "user_name")),), country="CN", asn=64500,
    org="Example Net", summary="customers with e-mail addresses",
)  # fmt: skip
CRM_WIPED = finding(
    "127.1.0.6", 3306, "mysql", "high", time=SECOND, software=("MariaDB", "10.11.6"), rows=10, size=2000,
    pii=("email",), collections=(("customers", ("email", "user_name")),), country="CN", asn=64500,
    org="Example Net", summary="customers with e-mail addresses",
)  # fmt: skip
EMPTY = finding(
    "127.1.0.5", 11211, "memcached", "low", time=SECOND, software=("memcached", "1.6.21"), rows=0, size=0,
    summary="empty cache",
)  # fmt: skip
EVERY = ["127.1.0.1:9200", "127.1.0.2:6379", "127.1.0.6:3306", "127.1.0.3:27017", "127.1.0.5:11211",
         "127.1.1.4:5432"]  # fmt: skip
"""Every service, in search order: severity, rows (most first), address, port."""


def build(db: str) -> Store:
    """Two scans: the first sees five services, the second wipes one and finds a new one."""
    store = Store(db)
    for scan_id, time, batch in (
        ("s1", FIRST, [POLICE, CACHE, SHOP, LOCKED, CRM]),
        ("s2", SECOND, [POLICE, CACHE, SHOP, LOCKED, CRM_WIPED, EMPTY]),
    ):
        store.scans.begin(scan_id, time, "127.1.0.0/23", "all", 512, {})
        store.findings.add([f if f.time == time else _again(f, scan_id, time) for f in batch])
        store.scans.finish(scan_id, time, "done")
        store.events.record(scan_id)
    return store


def _again(found: Finding, scan_id: str, time: str) -> Finding:
    return Finding.from_record({**found.to_record(), "scan_id": scan_id, "time": time})


@pytest.fixture(scope="module")
def store(new_index: Callable[[], str]) -> Store:
    """The synthetic index, on SQLite and on PostgreSQL."""
    return build(new_index())


@pytest.fixture(scope="module")
def hits(store: Store) -> Callable[[str], list[str]]:
    """`hits(query)`: the ip:port of every match, in search order."""

    def run(query: str) -> list[str]:
        page = store.search(query, limit=100, now=NOW)
        assert page.total == len(page.hits)
        return [f"{h.record['ip']}:{h.record['port']}" for h in page.hits]

    return run


def error(store: Store, query: str) -> QueryError:
    with pytest.raises(QueryError) as caught:
        store.search(query, now=NOW)
    return caught.value


def test_empty_query_finds_everything_most_severe_first(hits: Callable[[str], list[str]]) -> None:
    assert hits("") == hits("   ") == hits("*") == EVERY


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # ip: exact, CIDR, range (dash and bracket), wildcard
        ("ip:127.1.0.2", ["127.1.0.2:6379"]),
        ("ip:127.1.1.0/24", ["127.1.1.4:5432"]),
        ("ip:127.1.0.0/16", EVERY),
        ("ip:127.1.0.2-127.1.0.3", ["127.1.0.2:6379", "127.1.0.3:27017"]),
        ("ip:[127.1.0.5 TO 127.1.0.6]", ["127.1.0.6:3306", "127.1.0.5:11211"]),
        ("ip:127.1.1.*", ["127.1.1.4:5432"]),
        ("ip:127.1.0.?", EVERY[:5]),
        # port
        ("port:6379", ["127.1.0.2:6379"]),
        ("port:[5000 TO 10000]", ["127.1.0.1:9200", "127.1.0.2:6379", "127.1.1.4:5432"]),
        ("port:<3307", ["127.1.0.6:3306"]),
        # protocol, software, version: exact (any case), wildcards, field groups
        ("protocol:redis", ["127.1.0.2:6379"]),
        ("protocol:REDIS", ["127.1.0.2:6379"]),
        ("protocol:mongo*", ["127.1.0.3:27017"]),
        ("protocol:(redis OR mongodb)", ["127.1.0.2:6379", "127.1.0.3:27017"]),
        ("software:opensearch", ["127.1.0.1:9200"]),
        ("software:mariadb", ["127.1.0.6:3306"]),
        ("software:Maria*", ["127.1.0.6:3306"]),
        ("version:15.4", ["127.1.1.4:5432"]),
        ("version:7.*", ["127.1.0.2:6379"]),
        ('version:"2.11.0"', ["127.1.0.1:9200"]),
        # auth, exposed
        ("auth:required", ["127.1.1.4:5432"]),
        ("auth:none", EVERY[:5]),
        ("exposed:false", ["127.1.1.4:5432"]),
        ("exposed:true", EVERY[:5]),
        # severity: by name, by rank
        ("severity:critical", ["127.1.0.1:9200"]),
        ("severity:(low OR info)", ["127.1.0.5:11211", "127.1.1.4:5432"]),
        ("severity:>=high", ["127.1.0.1:9200", "127.1.0.2:6379", "127.1.0.6:3306"]),
        ("severity:>high", ["127.1.0.1:9200"]),
        ("severity:<medium", ["127.1.0.5:11211", "127.1.1.4:5432"]),
        ("severity:[low TO medium]", ["127.1.0.3:27017", "127.1.0.5:11211"]),
        # pii
        ("pii:national_id", ["127.1.0.1:9200"]),
        ("pii:phone", ["127.1.0.1:9200", "127.1.0.2:6379"]),
        ("pii:*", ["127.1.0.1:9200", "127.1.0.2:6379", "127.1.0.6:3306"]),
        ("pii:nat*", ["127.1.0.1:9200"]),
        ("pii:phone -pii:name", ["127.1.0.2:6379"]),
        # rows and size: comparisons, ranges, exclusive bounds, 1e9 notation, `*` = known
        ("rows:>1000000", ["127.1.0.1:9200"]),
        ("rows:>=1000", ["127.1.0.1:9200", "127.1.0.3:27017"]),
        ("rows:<50", ["127.1.0.6:3306", "127.1.0.5:11211"]),
        ("rows:<=50", ["127.1.0.2:6379", "127.1.0.6:3306", "127.1.0.5:11211"]),
        ("rows:[10 TO 1000]", ["127.1.0.2:6379", "127.1.0.6:3306", "127.1.0.3:27017"]),
        ("rows:{10 TO 1000}", ["127.1.0.2:6379"]),
        ("rows:1e3", ["127.1.0.3:27017"]),
        ("rows:*", EVERY[:5]),
        ("size_bytes:[1e9 TO *]", ["127.1.0.1:9200"]),
        ("size_bytes:>=1e6", ["127.1.0.1:9200", "127.1.0.3:27017"]),
        ("size_bytes:[* TO 2000]", ["127.1.0.6:3306", "127.1.0.5:11211"]),
        # collections: a count or a name
        ("collections:2", ["127.1.0.1:9200"]),
        ("collections:>=1", EVERY[:4]),
        ("collections:0", ["127.1.0.5:11211", "127.1.1.4:5432"]),
        ("collections:person", ["127.1.0.1:9200"]),
        ("collections:case_files", ["127.1.0.1:9200"]),
        ("collections:cust*", ["127.1.0.6:3306"]),
        # infected, btc
        ("infected:true", ["127.1.0.2:6379"]),
        ("infected:false", [e for e in EVERY if e != "127.1.0.2:6379"]),
        ("btc:*", ["127.1.0.2:6379"]),
        (f"btc:{BTC}", ["127.1.0.2:6379"]),
        ("btc:1Boat*", ["127.1.0.2:6379"]),
        ("btc:1BoatX", []),
        # country, asn, org
        ("country:CN", ["127.1.0.1:9200", "127.1.0.6:3306", "127.1.1.4:5432"]),
        ("country:de", ["127.1.0.3:27017"]),
        ("asn:64501", ["127.1.0.2:6379"]),
        ("asn:AS64501", ["127.1.0.2:6379"]),
        ("asn:[64501 TO 64502]", ["127.1.0.2:6379", "127.1.0.3:27017"]),
        ('org:"acme hosting"', ["127.1.0.2:6379"]),
        ("org:beispiel*", ["127.1.0.3:27017"]),
        # dates and age (now = 2026-11-28)
        ("first_seen:>=2026-11-01", ["127.1.0.5:11211"]),
        ("first_seen:2026-10-01", [*EVERY[:4], "127.1.1.4:5432"]),
        ("first_seen:[2026-11-20 TO 2026-11-20]", ["127.1.0.5:11211"]),
        ("first_seen:<2026-10-02", [e for e in EVERY if e != "127.1.0.5:11211"]),
        ("first_seen:>2026-11-20", []),
        ('first_seen:"2026-11-20T06:00:00Z"', ["127.1.0.5:11211"]),
        ('first_seen:>"2026-11-20T06:00:00Z"', []),  # after that second
        ('first_seen:>="2026-11-20T07:00:00+01:00"', ["127.1.0.5:11211"]),
        ("first_seen:>9999-12-31", []),  # the ends of time are values, not overflows
        ("last_seen:[* TO 9999-12-31T23:59:59]", EVERY),
        ("first_seen:>=0001-01-01", EVERY),
        ("port:>70000", []),
        ("last_seen:2026-11-20", EVERY),
        ("last_seen:<2026-11-20", []),
        ("age_days:<30", ["127.1.0.5:11211"]),
        ("age_days:7", ["127.1.0.5:11211"]),
        ("age_days:58", [e for e in EVERY if e != "127.1.0.5:11211"]),
        ("age_days:>58", []),
        ("age_days:[7 TO 58]", EVERY),
        # events
        ("event:wiped", ["127.1.0.6:3306"]),
        ("event:new_exposure", EVERY[:5]),
        ("event:new_*", EVERY[:5]),
        ("event:(closed OR wiped)", ["127.1.0.6:3306"]),
        ("event:* -event:new_exposure", []),
        # free text: summaries, collection names, field names; phrases and prefixes
        ("police", ["127.1.0.1:9200"]),
        ("sfzh", ["127.1.0.1:9200"]),
        ("ajbh", ["127.1.0.1:9200"]),
        ('"national IDs"', ["127.1.0.1:9200"]),
        ('"IDs national"', []),
        ("cust*", ["127.1.0.6:3306"]),
        ("user_name", ["127.1.0.6:3306"]),
        ("ransom note", ["127.1.0.2:6379"]),
        # boolean structure: AND OR NOT, + -, parentheses, implicit AND
        ("protocol:redis OR protocol:mongodb", ["127.1.0.2:6379", "127.1.0.3:27017"]),
        ("country:CN AND NOT severity:info", ["127.1.0.1:9200", "127.1.0.6:3306"]),
        ("+country:CN -pii:*", ["127.1.1.4:5432"]),
        ("country:CN pii:email", ["127.1.0.6:3306"]),
        ("(protocol:redis OR country:DE) AND rows:>100", ["127.1.0.3:27017"]),
        ("NOT (country:CN OR country:US)", ["127.1.0.3:27017", "127.1.0.5:11211"]),
        ("protocol:elasticsearch AND asn:AS64500 AND pii:national_id AND rows:>1000000", ["127.1.0.1:9200"]),
        # sub-queries next to a narrow condition (they only filter then)
        ("asn:AS64500 AND pii:email", ["127.1.0.6:3306"]),
        ("country:CN AND event:wiped", ["127.1.0.6:3306"]),
        ("ip:127.1.0.0/16 AND btc:*", ["127.1.0.2:6379"]),
        ("+country:CN -pii:* -event:*", ["127.1.1.4:5432"]),
        ("org:example* (pii:phone OR event:wiped)", ["127.1.0.1:9200", "127.1.0.6:3306"]),
        # TLS (every service here is plaintext; tests/test_tls_search.py has services with certificates)
        ("tls:false", EVERY),
        ("tls:true", []),
        ("hostname:*", []),
        ("cert.name:*.example.cn", []),
        ("cert.issuer:*", []),
        ("cert.sha256:ab*", []),
        ("cert.expired:false", []),
        ("cert.self_signed:false", []),
    ],
)
def test_fields_and_operators(hits: Callable[[str], list[str]], query: str, expected: list[str]) -> None:
    assert hits(query) == expected


def test_the_largest_values_a_column_holds_are_values(hits: Callable[[str], list[str]]) -> None:
    assert hits("rows:<=9223372036854775807") == hits("rows:*") != []
    assert hits("port:<=2147483647") == hits("") == hits("age_days:[0 TO 739000]")


def test_every_documented_field_is_covered() -> None:
    source = Path(__file__).read_text()
    assert [f for f in FIELDS if f'("{f}:' not in source and f"'{f}:" not in source] == []


def test_paging_and_total(store: Store) -> None:
    first = store.search("", limit=2, now=NOW)
    rest = store.search("", limit=10, offset=2, now=NOW)
    assert (first.total, rest.total, first.limit, rest.offset) == (6, 6, 2, 2)
    assert [f"{h.record['ip']}:{h.record['port']}" for h in first.hits + rest.hits] == EVERY
    assert store.search("", offset=6).hits == []
    with pytest.raises(ValueError):
        store.search("", limit=-1)


@pytest.mark.parametrize("query", ["", "port:[1 TO 9999]", "pii:*", "severity:>=medium"])
def test_a_page_is_the_same_sorted_from_its_matches_or_read_in_search_order(
    store: Store, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few matches are sorted once found, many are read in search order from its index: the same pages."""
    pages = [store.search(query, limit=2, offset=offset, now=NOW) for offset in (0, 2, 4)]
    monkeypatch.setattr(search, "SORTED_MATCHES", 0)
    assert [store.search(query, limit=2, offset=offset, now=NOW) for offset in (0, 2, 4)] == pages


def test_hits_are_the_latest_finding_records_with_their_ids(store: Store) -> None:
    (hit,) = store.search("event:wiped").hits
    assert hit.record["dataset"]["rows"] == 10 and hit.record["scan_id"] == "s2"
    assert (hit.first_seen, hit.last_seen) == (FIRST, SECOND)
    found = store.findings.get(hit.id or 0)
    assert found is not None and found.to_record() == {**CRM_WIPED.to_record(), "id": hit.id}


def test_facets_count_the_matches(store: Store) -> None:
    everything = store.facets("")
    assert list(everything) == list(FACET_FIELDS)
    assert everything["severity"] == [("high", 2), ("critical", 1), ("info", 1), ("low", 1), ("medium", 1)]
    assert everything["country"] == [("CN", 3), ("DE", 1), ("US", 1)]
    assert everything["pii"][0] == ("phone", 2)
    assert ("mariadb", 1) in everything["software"]  # in lower case, as it matches
    assert store.facets("country:CN", ["protocol", "pii"], top=2) == {
        "protocol": [("elasticsearch", 1), ("mysql", 1)],
        "pii": [("email", 1), ("name", 1)],
    }
    with pytest.raises(ValueError, match="unknown facet"):
        store.facets("", ["rows"])
    with pytest.raises(ValueError, match="top"):
        store.facets("", top=-1)
    with pytest.raises(QueryError):
        store.facets("pii:dna")


def test_read_views(store: Store) -> None:
    host = store.hosts.get("127.1.0.6")
    assert host is not None and (host.first_seen, host.last_seen) == (FIRST, SECOND)
    assert [s.record["port"] for s in host.services] == [3306] and host.services[0].id
    assert store.hosts.get("127.9.9.9") is None
    points = store.findings.history("127.1.0.6", 3306)
    assert [(p.time, p.rows, p.severity, p.exposed) for p in points] == [
        (FIRST, 150_000, "high", True),
        (SECOND, 10, "high", True),
    ]
    assert store.findings.history("127.1.0.2")[-1].infected is True
    assert store.findings.get(10**9) is None
    wiped = store.events.find(types=["wiped"])[0]
    assert store.events.get(wiped.id or 0) == wiped and store.events.get(10**9) is None
    every = store.events.find()
    assert store.events.find(after_id=every[0].id, limit=2) == every[1:3]
    assert store.events.find(after_id=every[-1].id) == []
    stats = store.stats()
    assert stats.services == 6 and stats.hosts == 6 and stats.exposed == 5 and stats.infected == 1
    assert stats.findings == 11 and stats.scans == 2
    assert list(stats.by_severity) == ["critical", "high", "medium", "low", "info"]
    assert stats.by_protocol["redis"] == 1 and stats.by_country["CN"] == 3
    assert stats.events_by_type["wiped"] == 1
    assert stats.last_scan is not None and stats.last_scan.id == "s2"
    assert [s.id for s in store.scans.latest()] == ["s2", "s1"] and len(store.scans.latest(limit=1)) == 1


@pytest.mark.parametrize(
    ("query", "column", "words"),
    [
        ("foo:bar", 1, "unknown field 'foo'"),
        ("protocol:redis AND summary:x", 20, "unknown field 'summary'"),
        ("pii:dna", 5, "unknown PII category 'dna'"),
        ("event:hacked", 7, "unknown event type"),
        ("severity:severe", 10, "unknown severity"),
        ("severity:>=urgent", 12, "unknown severity"),
        ("rows:many", 6, "not a whole number"),
        ("rows:1.5", 6, "not a whole number"),
        ("size_bytes:[1e9 TO lots]", 20, "not a whole number"),
        # out of what the column (or the calendar) holds: found by an outside review, each was a 500
        ("age_days:>99999999999", 11, "out of range (0 to "),
        ('age_days:>"-5"', 11, "out of range (0 to "),
        ("age_days:[1 TO 999999]", 16, "out of range"),
        ("rows:>99999999999999999999999", 7, "out of range (-9223372036854775808 to 9223372036854775807)"),
        ("size_bytes:<1e400", 13, "out of range"),
        ("port:>9999999999", 7, "out of range (-2147483648 to 2147483647)"),
        ("collections:99999999999999999999999", 13, "out of range"),
        ("asn:AS99999999999999999999", 5, "out of range"),
        ("first_seen:>0000-01-01", 13, "not an ISO 8601 date"),
        ("first_seen:>10000-01-01", 13, "not an ISO 8601 date"),
        ('last_seen:"9999-12-31T23:00:00-05:00"', 11, "out of range (years 0001 to 9999 in UTC)"),
        ('first_seen:<"0001-01-01T00:00:00+01:00"', 13, "out of range"),
        ("ip:300.1.1.1", 4, "not an IP address"),
        ("ip:127.0.0.0/33", 4, "not an IP network"),
        ("ip:127.0.0.9-127.0.0.1", 4, "ends before it starts"),
        ("exposed:maybe", 9, "true or false"),
        ("auth:password", 6, "unknown auth"),
        ("first_seen:yesterday", 12, "not an ISO 8601 date"),
        ("first_seen:>2026-13-01", 13, "not an ISO 8601 date"),
        ("protocol:redis AND (", 21, "ends too early"),
        ("protocol:redis)", 15, "unexpected ')'"),
        ('summary "unclosed', 9, "unclosed quote"),
        ("rows:>", 7, "ends too early"),
        ("protocol:redis~", 10, "fuzzy"),
        ("0~.", 2, "must be followed by a number"),  # found by the fuzz: luqum raised InvalidOperation
        ("protocol:/re.*/", 10, "regular expressions"),
        ("protocol:redis^2", 10, "boosting"),
        ("[1 TO 5]", 1, "needs a field"),
        ("protocol:country:CN", 10, "inside field"),
        ("version:[1 TO 2]", 9, "not a range"),
    ],
)
def test_errors_point_at_the_problem(store: Store, query: str, column: int, words: str) -> None:
    caught = error(store, query)
    assert str(caught).startswith(f"query error at column {column}: ")
    assert caught.position == column - 1 and words in str(caught) and "\n" not in str(caught)


def test_limits_are_clean_errors(store: Store) -> None:
    assert error(store, "a" * (MAX_LENGTH + 1)).position == MAX_LENGTH
    assert "nested" in str(error(store, "(" * 50 + "a" + ")" * 50))
    assert "nested" in str(error(store, "NOT " * 100 + "a"))
    assert "terms" in str(error(store, " OR ".join(["a"] * 300)))
    assert store.search("(((protocol:redis)))").total == 1


INJECTIONS = [  # (query, how many it finds taken literally; None: a query error)
    ("'; DROP TABLE services; --", None),
    ('protocol:"redis\'; DROP TABLE services; --"', 0),
    ("protocol:redis' OR '1'='1", None),
    ('"x" OR 1=1 --', None),
    ('org:"Example Net\\" OR 1=1"', 0),
    ("ip:127.1.0.1;DELETE", None),
    ("ip:%", None),
    ('collections:"person" OR fields:xm', None),
    ('collections:"person OR xm"', 0),
    ("NEAR(police person)", 0),
    ("NEAR(police person, 2)", 0),
    ("pol*ce", 0),
    ("*police", 1),
    ("^police", None),
    ("police^", None),
    ("summary : police", None),
    ('"summary : police"', 0),
    ("{summary}:police", None),
    ("- police", 5),
    ('police AND \\"', 0),
    ('\\"', 0),
    ('""', 0),
    ("%", 0),
    ("_", 0),
    ("btc:%", 0),
    ("org:%", 0),
    ("software:_", 0),
    ("version:\\\\", 0),
    ("police\x00", None),
    ("police\udcff", None),  # from a command line that was not UTF-8
]


@pytest.mark.parametrize(("query", "total"), INJECTIONS)
def test_injection_attempts_are_plain_values(store: Store, query: str, total: int | None) -> None:
    before = index_contents(store.engine)
    if total is None:
        error(store, query)
    else:
        assert store.search(query, now=NOW).total == total
    assert index_contents(store.engine) == before


def test_quotes_and_fts_syntax_match_literally(hits: Callable[[str], list[str]]) -> None:
    assert hits('"police" OR "person"') == hits("police") == hits("police*")
    assert hits("NEAR") == hits("police AND NEAR") == hits('"police OR person"') == []
    assert hits("org:Example*") == ["127.1.0.1:9200", "127.1.0.6:3306", "127.1.1.4:5432"]
    assert hits("org:Example_Net") == hits("org:Example%") == []


QUERY_PARTS = st.sampled_from(
    [*(f"{f}:" for f in FIELDS), "AND", "OR", "NOT", "+", "-", "(", ")", "[", "]", "{", "}", "TO", "*", "?",
     '"', ":", ">", ">=", "<", "=", "~", "^", "\\", "/", "1e9", "redis", "127.1.0.0/16", "high", "2026-11-01",
     "national_id", "true", "'", ";", "NEAR(", "person", " "]
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["1e400", "-1e400", "1e19", "9223372036854775808", "2147483648", "1_000", "0.5", "AS1"]),
)
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
TIMES = st.one_of(
    st.dates().map(str),
    st.datetimes(timezones=ZONES).map(lambda d: f'"{d.isoformat()}"'),
    st.sampled_from(["0000-01-01", "10000-01-01", "9999-12-31", "0001-01-01", '"9999-12-31T23:59:59"']),
)
EXTREME_TERMS = st.one_of(
    st.tuples(st.sampled_from(["rows", "size_bytes", "port", "collections", "asn", "age_days"]), NUMBERS),
    st.tuples(st.sampled_from(["first_seen", "last_seen"]), TIMES),
).flatmap(
    lambda field_value: st.sampled_from(
        [f"{field_value[0]}:{op}{field_value[1]}" for op in ("", ">", ">=", "<", "<=", '"')]
        + [f"{field_value[0]}:[{field_value[1]} TO *]", f"{field_value[0]}:{{* TO {field_value[1]}}}"]
    )
)
"""Numbers and times at and beyond what the columns and the calendar hold."""


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.one_of(
        st.text(max_size=80),
        st.lists(QUERY_PARTS, max_size=12).map("".join),
        st.lists(EXTREME_TERMS, min_size=1, max_size=3).map(" ".join),
    )
)
def test_any_text_gives_a_page_or_a_clean_error(store: Store, query: str) -> None:
    before = index_contents(store.engine)
    try:
        page = store.search(query, limit=5, now=NOW)
        store.facets(query, ["pii", "protocol"])
    except QueryError as exc:
        assert 0 <= exc.position <= len(query) and "\n" not in str(exc)
    else:
        assert isinstance(page, SearchPage) and page.total >= len(page.hits)
    assert index_contents(store.engine) == before


OLD_SCHEMA = """
CREATE TABLE hosts (ip VARCHAR(15) NOT NULL, ip_num BIGINT NOT NULL, first_seen VARCHAR(20) NOT NULL,
    last_seen VARCHAR(20) NOT NULL, last_scan_id VARCHAR(40) NOT NULL, PRIMARY KEY (ip));
CREATE INDEX ix_hosts_ip_num ON hosts (ip_num);
CREATE TABLE services (id INTEGER NOT NULL, ip VARCHAR(15) NOT NULL, ip_num BIGINT NOT NULL,
    port INTEGER NOT NULL, protocol VARCHAR(32) NOT NULL, software VARCHAR(64), version VARCHAR(64),
    auth VARCHAR(8) NOT NULL, exposed BOOLEAN NOT NULL, rows BIGINT, size_bytes BIGINT, severity VARCHAR(8),
    first_seen VARCHAR(20) NOT NULL, last_seen VARCHAR(20) NOT NULL, last_scan_id VARCHAR(40) NOT NULL,
    record JSON NOT NULL, PRIMARY KEY (id), CONSTRAINT uq_services_ip_port UNIQUE (ip, port));
CREATE INDEX ix_services_protocol ON services (protocol);
CREATE INDEX ix_services_ip_num ON services (ip_num);
CREATE INDEX ix_services_severity ON services (severity);
CREATE TABLE findings (id INTEGER NOT NULL, scan_id VARCHAR(40) NOT NULL, ip VARCHAR(15) NOT NULL,
    port INTEGER NOT NULL, time VARCHAR(20) NOT NULL, record JSON NOT NULL, PRIMARY KEY (id),
    CONSTRAINT uq_findings_scan_ip_port UNIQUE (scan_id, ip, port));
CREATE INDEX ix_findings_ip_port ON findings (ip, port);
"""


def test_an_index_from_the_previous_release_becomes_searchable(tmp_path: Path) -> None:
    """The previous release's tables (plain SQL, its column set), holding two services: opened with this
    release, every field and free text works, and new findings are indexed as usual."""
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(OLD_SCHEMA)
        for number, found in enumerate((POLICE, CACHE), start=1):
            record = json.dumps(found.to_record())
            ip_num = int.from_bytes(bytes(int(o) for o in found.ip.split(".")), "big")
            conn.execute("INSERT INTO hosts VALUES (?, ?, ?, ?, 's1')", (found.ip, ip_num, FIRST, FIRST))
            conn.execute(
                "INSERT INTO services VALUES (?, ?, ?, ?, ?, ?, ?, 'none', 1, ?, ?, ?, ?, ?, 's1', ?)",
                (number, found.ip, ip_num, found.port, found.protocol, found.software.name,  # type: ignore[union-attr]
                 found.software.version, found.rows, found.size_bytes, found.to_record()["severity"],  # type: ignore[union-attr]
                 FIRST, FIRST, record),
            )  # fmt: skip
            conn.execute(
                "INSERT INTO findings VALUES (?, 's1', ?, ?, ?, ?)",
                (number, found.ip, found.port, FIRST, record),
            )
    store = Store(str(db))
    assert [h.record["ip"] for h in store.search("").hits] == ["127.1.0.1", "127.1.0.2"]
    assert store.search("").hits[0].id == 1
    assert [
        h.record["ip"] for h in store.search("pii:national_id AND severity:critical AND country:CN").hits
    ] == ["127.1.0.1"]
    assert [h.record["ip"] for h in store.search("btc:* infected:true asn:AS64501 ransom").hits] == [
        "127.1.0.2"
    ]
    assert [h.record["ip"] for h in store.search("sfzh collections:person").hits] == ["127.1.0.1"]
    store.findings.add([SHOP])
    assert store.search("collections:orders").total == 1 and store.search("").total == 3
    assert Store(str(db)).search("police").total == 1  # opening it again changes nothing


def test_a_service_seen_again_replaces_its_search_rows(new_index: Callable[[], str]) -> None:
    store = Store(new_index())
    store.findings.add([CACHE, POLICE])
    cured = finding("127.1.0.2", 6379, "redis", "medium", time=SECOND, rows=5, summary="redis, clean now")
    store.findings.add([cured])
    assert store.search("btc:* OR pii:* OR ransom").total == 1  # the police index only
    assert store.search("clean").total == 1 and store.search("infected:true").total == 0
    store.findings.add([cured, CACHE])  # the same service twice in one batch: the later one wins
    assert store.search("btc:*").total == 1 and store.search("clean").total == 0


def test_facets_and_count_of_everything_follow_every_write(new_index: Callable[[], str]) -> None:
    """Facets and the count of everything (a summary kept at write time) equal those counted over
    a query that matches every service, for analysts and the public, as services change and become
    critical."""
    store = Store(new_index())
    store.findings.add([CACHE, SHOP, CRM])

    def both(public: bool) -> dict[str, list[tuple[str, int]]]:
        everything = store.facets("", public=public)
        assert everything == store.facets("port:*", public=public)  # counted service by service
        assert store.search("", public=public).total == store.search("port:*", public=public).total
        return everything

    assert both(False)["severity"] == [("high", 2), ("medium", 1)]
    assert both(True)["pii"] == [("email", 1), ("phone", 1)]
    leaked = finding("127.1.0.2", 6379, "redis", "critical", time=SECOND, rows=5, pii=("national_id",))
    store.findings.add([leaked, CRM_WIPED])
    assert both(False)["severity"] == [("critical", 1), ("high", 1), ("medium", 1)]
    public = both(True)
    assert public["severity"] == [("high", 1), ("medium", 1)] and ("redis", 1) not in public["protocol"]
    assert public["pii"] == [("email", 1)] and both(False)["pii"] == [("email", 1), ("national_id", 1)]
    assert store.search("").total == 3 and store.search("", public=True).total == 2


def test_facets_of_everything_count_software_names_in_any_case_as_the_services_do(
    new_index: Callable[[], str],
) -> None:
    """Software names that differ in case, in ASCII and beyond it, are counted in the summary as
    counting service by service lowers them, as services change software and leave the visible set."""
    store = Store(new_index())
    names = ("Élastic", "ÉLASTIC", "elastic", "ELASTIC")
    store.findings.add(
        [
            finding(f"127.1.0.{i}", 9200, "elasticsearch", "high", software=(n, "1"))
            for i, n in enumerate(names, 1)
        ]
    )
    changed = finding("127.1.0.3", 9200, "elasticsearch", "critical", time=SECOND, software=("ÉLASTIC", "2"))
    store.findings.add([changed, finding("127.1.0.4", 9200, "elasticsearch", "medium", time=SECOND)])
    for public in (False, True):
        everything = store.facets("", ["software", "severity"], public=public)
        assert everything == store.facets("port:*", ["software", "severity"], public=public)
        assert sum(n for _, n in everything["software"]) == (2 if public else 3)


def test_a_new_service_twice_in_one_batch_is_stored_as_one_after_the_other(
    new_index: Callable[[], str],
) -> None:
    """Two findings of a service not indexed before, in one batch: first seen at the first, its state,
    search rows and host those of the later one (as storing them one at a time would leave them)."""
    store = Store(new_index())
    cured = finding("127.1.0.2", 6379, "redis", "medium", time=SECOND, rows=5, summary="redis, clean now")
    store.findings.add([CACHE, cured])
    view = store.hosts.get("127.1.0.2")
    assert view is not None and [(s.first_seen, s.last_seen) for s in view.services] == [(FIRST, SECOND)]
    assert store.search("clean").total == 1 and store.search("btc:* OR infected:true").total == 0
    assert store.hosts.top()[0].last_seen == SECOND and store.hosts.top()[0].first_seen == FIRST


def test_a_host_with_several_ports_in_one_batch_is_seen_over_all_of_them(
    new_index: Callable[[], str],
) -> None:
    """A new host whose higher port was examined first, in one batch: the list of hosts shows it first
    and last seen over its services, as its own view does (not at the times of its lowest and highest
    port)."""
    store = Store(new_index())
    late = finding("127.1.0.2", 6379, "redis", "high", time=SECOND)
    early = replace(finding("127.1.0.2", 27017, "mongodb", "medium"), scan_id="s2")
    store.findings.add([late, early])
    (listed,) = store.hosts.top()
    view = store.hosts.get("127.1.0.2")
    assert view is not None and (view.first_seen, view.last_seen) == (FIRST, SECOND)
    assert (listed.first_seen, listed.last_seen) == (FIRST, SECOND)


def test_a_host_stored_by_batches_out_of_time_order_is_seen_over_all_of_its_services(
    new_index: Callable[[], str],
) -> None:
    """Two workers scanning shards that split a host's ports store their batches in any order: the list
    of hosts shows it first and last seen over its services, as its own view does."""
    store = Store(new_index())
    store.findings.add([finding("127.1.0.2", 6379, "redis", "high", time=SECOND)])
    store.findings.add([replace(finding("127.1.0.2", 27017, "mongodb", "medium"), scan_id="s2")])
    (listed,) = store.hosts.top()
    assert (listed.first_seen, listed.last_seen) == (FIRST, SECOND)


def test_a_service_without_assessment_has_no_severity(new_index: Callable[[], str]) -> None:
    store = Store(new_index())
    bare = Finding("127.1.0.9", 21, "ftp", None, "unknown", False, FIRST, "s1")
    store.findings.add([bare, SHOP])
    assert [h.record["ip"] for h in store.search("").hits] == ["127.1.0.3", "127.1.0.9"]
    assert store.search("severity:<=high").total == store.search("severity:*").total == 1
    assert store.search("NOT severity:medium").total == 1 and store.search("infected:false").total == 2


def test_a_service_naming_many_long_fields_is_stored_and_found(new_index: Callable[[], str]) -> None:
    """200 collections of 200 distinct 60-character field names (a hostile server's answer): stored on
    both databases (a PostgreSQL tsvector holds at most 1 MB), the first names found by free text."""
    names = [tuple(f"f{c:03d}x{n:03d}" + "y" * 52 for n in range(200)) for c in range(200)]
    store = Store(new_index())
    store.findings.add([finding("127.1.0.9", 9200, "elasticsearch", "high",
                                collections=tuple((f"c{c}", names[c]) for c in range(200)))])  # fmt: skip
    assert store.search(names[0][0]).total == store.search("collections:c0").total == 1


def test_text_that_grows_into_more_letters_is_stored(new_index: Callable[[], str]) -> None:
    """Summary, collection and field names of compatibility characters (㌀ is アパート): each of the three
    texts, once cut into words, is four times as long, together more than a PostgreSQL tsvector holds
    unless cut again; stored on both databases and found by free text."""
    squares = [chr(c) for c in range(0x3300, 0x3358)]

    def text(seed: int) -> str:  # 330 distinct words of 150 characters (about 1,800 bytes once grown)
        pick = random.Random(seed).choice
        return " ".join("".join(pick(squares) for _ in range(150)) for _ in range(330))

    grown = finding("127.1.0.9", 9200, "elasticsearch", "high", summary="hostile " + text(1),
                    collections=((text(2), tuple(text(3).split())),))  # fmt: skip
    store = Store(new_index())
    store.findings.add([grown])
    assert store.search("hostile").total == 1


def test_long_names_are_cut_to_their_columns(new_index: Callable[[], str]) -> None:
    """A server may name its software and version at any length, a network its owner: the record keeps
    them whole, the search columns (limited on PostgreSQL) their start."""
    long = finding("127.1.0.9", 6379, "redis", "low", software=("r" * 100, "7." + "9" * 300),
                   asn=64999, org="O" * 500)  # fmt: skip
    store = Store(new_index())
    store.findings.add([long])
    (hit,) = store.search("version:7.* AND org:oo* AND software:rrr*").hits
    assert hit.record["software"] == {"name": "r" * 100, "version": "7." + "9" * 300}


def test_server_text_no_database_holds_is_stored_on_both(new_index: Callable[[], str]) -> None:
    """NUL characters (PostgreSQL refuses them) and lone surrogates (JSON's `\\ud800` decodes to one; no
    database encodes it) in a server's software, version, collection names and summary: the batch is
    stored with its other services, the record as the server sent it, the text searched and counted
    without them, and a rescan's change events naming the new version are stored too (with the NUL
    characters on SQLite, which holds them)."""
    store = Store(new_index())
    for scan_id, time, version in (("s1", FIRST, "7\x00.1\ud800"), ("s2", SECOND, "8\x00.0\udfff")):
        hostile = finding(
            "127.1.0.9", 9200, "elasticsearch", "high", time=time, software=("elastic\x00search", version),
            collections=(("idx\x00\ud800", ("f\x00",)),), summary="index\x00 \ud800found",
        )  # fmt: skip
        store.scans.begin(scan_id, time, "127.1.0.0/24", "all", 512, {})
        store.findings.add([hostile, replace(SHOP, time=time, scan_id=scan_id)])
        store.scans.finish(scan_id, time, "done")
        store.events.record(scan_id)
    (hit,) = store.search("software:elasticsearch AND version:8.0*").hits
    assert hit.record["software"] == {"name": "elastic\x00search", "version": "8\x00.0\udfff"}
    assert (
        store.search("found").total == 1
        and store.facets("")["software"] == store.facets("port:*")["software"]
    )
    (changed,) = store.events.find(types=["software_changed"])
    assert (
        changed.summary.replace("\x00", "") == "software elasticsearch 7.1\ufffd -> elasticsearch 8.0\ufffd"
    )


def test_services_without_a_row_count_come_last_within_their_severity(new_index: Callable[[], str]) -> None:
    store = Store(new_index())
    unknown, counted = (
        finding("127.1.0.8", 6379, "redis", "high"),
        finding("127.1.0.9", 6379, "redis", "high", rows=5),
    )
    store.findings.add([unknown, counted, finding("127.1.0.7", 6379, "redis", "critical")])
    assert [h.record["ip"] for h in store.search("").hits] == ["127.1.0.7", "127.1.0.9", "127.1.0.8"]


# the real lab --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab_store(scanned: dict[str, Any], new_index: Callable[[], str]) -> Store:
    """The lab scan's index; on PostgreSQL, the scan's findings (its JSON lines) stored there."""
    db = new_index()
    if "://" not in db:
        return Store(str(scanned["db"]))
    store = Store(db)
    store.findings.add([Finding.from_record(r) for r in scanned["records"].values()])
    return store


def _lab_matches(scanned: dict[str, Any], keep: Callable[[dict[str, Any]], bool]) -> set[str]:
    return {f"{r['ip']}:{r['port']}" for r in scanned["records"].values() if keep(r)}


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ("pii:national_id AND severity:critical",
         lambda r: "national_id" in (r.get("pii") or {}) and r.get("severity") == "critical"),
        ("protocol:elasticsearch", lambda r: r["protocol"] == "elasticsearch"),
        ("infected:true", lambda r: (r.get("ransom") or {}).get("infected")),
        ("btc:*", lambda r: any(n["btc_addresses"] for n in (r.get("ransom") or {}).get("notes", ()))),
        ("exposed:false", lambda r: not r["exposed"]),
        ("rows:>=1000 AND pii:phone",
         lambda r: (r["dataset"]["rows"] or 0) >= 1000 and "phone" in r.get("pii", {})),
    ],
)  # fmt: skip
def test_queries_on_the_lab_scan(
    scanned: dict[str, Any], lab_store: Store, query: str, keep: Callable[[dict[str, Any]], bool]
) -> None:
    expected = _lab_matches(scanned, keep)
    assert expected, f"the lab has nothing for {query}"
    page = lab_store.search(query, limit=1000)
    assert {f"{h.record['ip']}:{h.record['port']}" for h in page.hits} == expected and page.total == len(
        expected
    )


def test_free_text_on_the_lab_scan(scanned: dict[str, Any], lab_store: Store) -> None:
    """`person` finds every service with a collection, field or summary word `person` (the police data)."""
    expected = _lab_matches(
        scanned,
        lambda r: any(
            "person" in (c["name"] + " " + " ".join(c["fields"])).lower().replace("_", " ").split()
            for c in r["collections"]
        ),
    )
    found = {f"{h.record['ip']}:{h.record['port']}" for h in lab_store.search("person", limit=1000).hits}
    assert expected and expected <= found


# the command line ---------------------------------------------------------------------------------


def test_cli_search(store: Store) -> None:
    shown = leaksonar("search", "pii:national_id", "--db", store.db).stdout
    assert "127.1.0.1:9200" in shown and "critical" in shown and "national_id" in shown
    assert "127.1.0.2" not in shown
    found = json.loads(leaksonar("search", "country:CN", "--db", store.db, "--json", "--facets").stdout)
    assert found["total"] == 3 and [h["ip"] for h in found["hits"]] == ["127.1.0.1", "127.1.0.6", "127.1.1.4"]
    assert found["facets"]["protocol"][0][1] == 1 and set(found["facets"]) == set(FACET_FIELDS)
    paged = json.loads(
        leaksonar("search", "", "--db", store.db, "--json", "--limit", "1", "--offset", "1").stdout
    )
    assert paged["total"] == 6 and [h["ip"] for h in paged["hits"]] == ["127.1.0.2"] and "facets" not in paged


@pytest.mark.parametrize(
    ("query", "column"),
    [("rows:>", 7), ("pii:dna", 5), ("foo:bar", 1), ("age_days:>99999999999", 11), ("rows:>1e400", 7)],
)
def test_cli_bad_query_is_one_line_exit_2(store: Store, query: str, column: int) -> None:
    result = leaksonar("search", query, "--db", store.db, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"leaksonar: error: query error at column {column}: ")
    assert result.stderr.count("\n") == 1
