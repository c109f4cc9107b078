"""IPv6 in the index, on SQLite and PostgreSQL: `ip:` exact and prefix queries in any spelling, IPv4 and
IPv6 in one address order, the host page, events and letter preview by an IPv6 address (API and UI, the
public view unchanged), owners and `report --network` with IPv6 networks, and an index of revision 0007
holding IPv4 rows upgraded and still searchable by address."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from leaksonar.report import Selection, load_owners, plan
from leaksonar.store.db import Store, _url
from leaksonar.store.query import QueryError
from leaksonar.web.app import create_app
from tests.conftest import leaksonar
from tests.test_api import UNLIMITED
from tests.test_migrations import _config, _differences
from tests.test_search import FIRST, finding

# SQLite cannot reflect expression indexes (lower(software), ...): they are compared on PostgreSQL only
pytestmark = pytest.mark.filterwarnings("ignore:.*expression-based index")

V4_LOW = finding("127.3.0.9", 6379, "redis", "medium")
V4_HIGH = finding("127.3.0.10", 6379, "redis", "medium")
DOC = finding("2001:db8::5", 27017, "mongodb", "medium")
NINE = finding("fd00::9", 6379, "redis", "medium")
SIXTEEN = finding("fd00::10", 6379, "redis", "medium")  # after fd00::9 by value, before it as text
ES = finding("fd00::1", 9200, "elasticsearch", "high", rows=10)
POLICE = finding("fd00:0:0:1::c", 9200, "elasticsearch", "critical", rows=10)
ALL = (V4_LOW, V4_HIGH, DOC, NINE, SIXTEEN, ES, POLICE)


@pytest.fixture(scope="module")
def db(new_index: Callable[[], str]) -> str:
    db = new_index()
    store = Store(db)
    store.scans.begin("s1", FIRST, "fd00::/64", "6379,9200,27017", 256, {})
    store.findings.add(list(ALL))
    store.scans.finish("s1", FIRST, "done")
    store.events.record("s1")
    store.close()
    return db


@pytest.fixture(scope="module")
def store(db: str) -> Store:
    return Store(db)


def ips(store: Store, query: str, *, public: bool = False) -> list[str]:
    return [h.record["ip"] for h in store.search(query, limit=100, public=public).hits]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('ip:"fd00::1"', {"fd00::1"}),
        ('ip:"FD00:0000:0000:0000:0000:0000:0000:0001"', {"fd00::1"}),  # upper case, expanded
        ('ip:"fd00:0:0:0:0:0:0:01"', {"fd00::1"}),  # leading zeros
        (r"ip:fd00\:\:1", {"fd00::1"}),  # colons escaped instead of quoted
        ('ip:"fd00::/64"', {"fd00::1", "fd00::9", "fd00::10"}),
        (r"ip:fd00\:\:/16", {"fd00::1", "fd00::9", "fd00::10", "fd00:0:0:1::c"}),
        ('ip:"2001:db8::/32"', {"2001:db8::5"}),
        ('ip:"fd00::2-fd00::ff"', {"fd00::9", "fd00::10"}),
        ('ip:["fd00::9" TO "fd00::10"]', {"fd00::9", "fd00::10"}),
        ('ip:"::/0"', {"2001:db8::5", "fd00::1", "fd00::9", "fd00::10", "fd00:0:0:1::c"}),
        ("ip:127.3.0.0/24", {"127.3.0.9", "127.3.0.10"}),  # IPv4 as before: no IPv6 address in it
        ("ip:127.3.0.10", {"127.3.0.10"}),
        ('ip:"::ffff:127.3.0.10"', {"127.3.0.10"}),  # an IPv4-mapped address is the IPv4 one, as scans
        ('ip:"::FFFF:7F03:9"', {"127.3.0.9"}),  # read it
        ('ip:"::ffff:127.3.0.0/120"', {"127.3.0.9", "127.3.0.10"}),
        ('ip:"::ffff:127.3.0.10-::ffff:127.3.0.255"', {"127.3.0.10"}),
        ('ip:"fd00::1" OR ip:127.3.0.9', {"fd00::1", "127.3.0.9"}),
        (r"ip:fd00\:\:*", {"fd00::1", "fd00::9", "fd00::10"}),  # a wildcard on the address as written
        (r"ip:FD00\:\:?", {"fd00::1", "fd00::9"}),  # in any case, on PostgreSQL too
        ('ip:"fd00::1?"', {"fd00::10"}),  # quoted, as an IPv6 address's colons want: still a wildcard
    ],
)
def test_ip_queries(store: Store, query: str, expected: set[str]) -> None:
    assert set(ips(store, query)) == expected


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("ip:fd00::1", 'quote a value with colons, such as an IPv6 address: ip:"fd00::1"'),
        ("ip:2001:db8", 'quote a value with colons, such as an IPv6 address: ip:"fd00::1"'),
        ('ip:"fd00::zz"', "'fd00::zz' is not an IP address"),
        ('ip:"fe80::1%eth0"', "'fe80::1%eth0' is not an IP address"),
        ('ip:"fd00::/129"', "'fd00::/129' is not an IP network"),
        ('ip:"fd00::9-fd00::1"', "the range ends before it starts"),
    ],
)
def test_bad_ipv6_values_are_one_line_errors(store: Store, query: str, words: str) -> None:
    with pytest.raises(QueryError) as caught:
        store.search(query)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_ipv4_then_ipv6_each_by_value(store: Store) -> None:
    assert ips(store, "severity:medium") == ["127.3.0.9", "127.3.0.10", "2001:db8::5", "fd00::9", "fd00::10"]
    assert [h.ip for h in store.hosts.top()] == [
        "127.3.0.9", "127.3.0.10", "2001:db8::5", "fd00::1", "fd00::9", "fd00::10", "fd00:0:0:1::c",
    ]  # fmt: skip
    found = store.services.exposed(ipaddress.ip_network("fd00::/16"))
    assert [s.ip for s in found] == ["fd00::1", "fd00::9", "fd00::10", "fd00:0:0:1::c"]
    assert [(e.ip, e.type) for e in store.events.find(scan_id="s1")][:3] == [
        ("127.3.0.9", "new_exposure"),
        ("127.3.0.10", "new_exposure"),
        ("2001:db8::5", "new_exposure"),
    ]


def test_the_public_view_of_ipv6_is_unchanged(store: Store) -> None:
    assert ips(store, 'ip:"fd00::/16"', public=True) == ["fd00::1", "fd00::9", "fd00::10"]
    assert store.hosts.get("fd00:0:0:1::c", public=True) is None
    assert store.hosts.get("fd00:0:0:1::c") is not None


def _web(store: Store) -> TestClient:
    return TestClient(create_app(store, allowed_hosts=["testserver"], rate_limit=UNLIMITED))


def test_the_api_by_an_ipv6_address(store: Store) -> None:
    web = _web(store)
    for spelling in ("fd00::1", "FD00:0:0:0:0:0:0:0001"):
        host = web.get(f"/api/hosts/{spelling}")
        assert host.status_code == 200 and host.json()["ip"] == "fd00::1"
        assert [s["port"] for s in host.json()["services"]] == [9200]
    events = web.get("/api/events", params={"ip": "FD00::9"}).json()["events"]
    assert [(e["ip"], e["port"], e["type"]) for e in events] == [("fd00::9", 6379, "new_exposure")]
    mapped = web.get("/api/hosts/::ffff:127.3.0.9")  # as a dual-stack server's log writes the address
    assert mapped.status_code == 200 and mapped.json()["ip"] == "127.3.0.9"
    for junk in ("fd00::zz", "fe80::1%eth0", "127.3.0.300"):
        bad = web.get(f"/api/hosts/{junk}")
        assert bad.status_code == 400 and bad.json()["error"] == f"{junk!r} is not an IP address"
        assert web.get("/api/events", params={"ip": junk}).status_code == 400
    hidden, unknown = web.get("/api/hosts/fd00:0:0:1::c"), web.get("/api/hosts/fd00:0:0:1::d")
    assert hidden.status_code == unknown.status_code == 404 and hidden.content == unknown.content


def test_the_ui_by_an_ipv6_address(store: Store) -> None:
    web = _web(store)
    page = web.get("/host/FD00::1")
    assert page.status_code == 200 and "<h1>Host fd00::1</h1>" in page.text
    results = web.get("/search", params={"q": 'ip:"fd00::/64"'}).text
    assert '<a href="/host/fd00::9">[fd00::9]:6379</a>' in results
    assert (
        '<a href="/host/127.3.0.9">127.3.0.9:6379</a>' in web.get("/search", params={"q": "port:6379"}).text
    )
    assert "[fd00::9]:6379" in web.get("/").text  # the latest events
    letter = web.get("/host/fd00::1/report")
    assert letter.status_code == 200
    assert "leaksonar report --network fd00::1/128" in letter.text and "[fd00::1]:9200" in letter.text
    bad = web.get("/host/fd00::zz")
    assert bad.status_code == 400 and "is not an IP address" in bad.text
    assert web.get("/host/fd00:0:0:1::c").status_code == 404


def test_owners_and_report_by_an_ipv6_network(db: str, store: Store, tmp_path: Path) -> None:
    owners = tmp_path / "owners.toml"
    owners.write_text(
        '[[owner]]\norg = "Lab v6"\nnetworks = ["fd00::/64", "127.3.0.0/24"]\nabuse = "abuse@v6.example"\n\n'
        '[[owner]]\norg = "Lab v6 nine"\nnetwork = "FD00::9/128"\nabuse = "abuse@nine.example"\n'
    )
    table = load_owners(owners)
    letters = plan(store, Selection(network=ipaddress.ip_network("fd00::/64")), table, FIRST, force=True)
    due = {letter.owner.org: [(row.ip, row.port) for row, _ in letter.due] for letter in letters}
    assert due == {"Lab v6": [("fd00::1", 9200), ("fd00::10", 6379)], "Lab v6 nine": [("fd00::9", 6379)]}
    bad = tmp_path / "bad.toml"
    bad.write_text('[[owner]]\norg = "X"\nnetwork = "fd00::zz/64"\n')
    with pytest.raises(Exception, match=r"'fd00::zz/64' is not an IP network \(CIDR\)"):
        load_owners(bad)
    out = tmp_path / "letters"
    shown = leaksonar(
        "report", "--network", "fd00::/64", "--db", db, "--owners", str(owners), "--out", str(out)
    )
    assert "Lab v6 <abuse@v6.example>: 2 service(s) to report" in shown.stdout
    assert '<h3 id="s2">[fd00::10]:6379: ' in "".join(p.read_text() for p in out.glob("*.html"))
    events = leaksonar("events", "--db", db, "--json", "--ip", "[FD00::9]:6379").stdout
    assert [json.loads(line)["ip"] for line in events.splitlines()] == ["fd00::9"]
    refused = leaksonar("report", "--network", "fd00::zz/64", "--db", db, check=False)
    assert refused.returncode == 2 and "--network 'fd00::zz/64' is not an IP network (CIDR)" in refused.stderr


def test_an_index_at_0007_with_ipv4_rows_is_upgraded_and_searchable(new_index: Callable[[], str]) -> None:
    db = new_index()
    engine = create_engine(_url(db))
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0007")
        for found in (V4_LOW, V4_HIGH):
            values = {"ip": found.ip, "n": int(ipaddress.IPv4Address(found.ip)), "t": FIRST}
            conn.execute(text("INSERT INTO hosts VALUES (:ip, :n, :t, :t, 's1')"), values)
            conn.execute(
                text(
                    "INSERT INTO services (ip, ip_num, port, protocol, auth, exposed, severity, first_seen,"
                    " last_seen, last_scan_id, record, \"rank\", infected, collections)"
                    " VALUES (:ip, :n, 6379, 'redis', 'none', true, 'medium', :t, :t, 's1', :r, 2, false, 0)"
                ),
                {**values, "r": json.dumps(found.to_record())},
            )  # fmt: skip
    engine.dispose()
    store = Store(db)
    assert ips(store, "ip:127.3.0.10") == ["127.3.0.10"]
    assert (
        ips(store, "ip:127.3.0.0/24") == ips(store, "ip:127.3.0.9-127.3.0.10") == ["127.3.0.9", "127.3.0.10"]
    )
    store.scans.begin("s2", FIRST, "fd00::/64", "6379", 256, {})
    store.findings.add([NINE])
    assert [h.ip for h in store.hosts.top()] == ["127.3.0.9", "127.3.0.10", "fd00::9"]
    assert ips(store, 'ip:"fd00::9"') == ["fd00::9"]
    assert _differences(db) == []
