"""TLS in the index, on SQLite and PostgreSQL: the tls, hostname and cert.* query fields (a suffix wildcard
over certificate names, hostile names that hold LIKE's wildcards), the cert.issuer facet and the public
view, an index of the previous revision derived again, and `report --domain`."""

from __future__ import annotations

import html
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from leaksonar.model import Certificate, Finding, Tls
from leaksonar.store.db import Store, _url
from leaksonar.store.query import QueryError
from leaksonar.web.app import create_app
from tests.conftest import leaksonar
from tests.test_api import UNLIMITED
from tests.test_migrations import _config, _differences
from tests.test_search import FIRST, finding

# SQLite cannot reflect expression indexes (lower(software), ...): they are compared on PostgreSQL only
pytestmark = pytest.mark.filterwarnings("ignore:.*expression-based index")

ENCRYPT = "CN=R11,O=Let's Encrypt,C=US"
EVIL_ISSUER = 'O=100% "evil"_\\*'
EVIL_NAME = "x%_\\'\".hostile.test"


def tls(
    names: tuple[str, ...], issuer: str, sha256: str, *, expired: bool = False, self_signed: bool = False
) -> Tls:
    cert = Certificate(
        f"CN={names[0]}", names, issuer, "2026-10-01T00:00:00Z", "2026-12-30T00:00:00Z",
        self_signed, expired, sha256, "EC secp256r1",
    )  # fmt: skip
    return Tls("TLSv1.3", "TLS_AES_256_GCM_SHA384", cert)


def served(ip: str, port: int, severity: str, tls_: Tls | None, hostname: str | None = None) -> Finding:
    return replace(finding(ip, port, "elasticsearch", severity, rows=10), tls=tls_, hostname=hostname)


ES = served(
    "127.2.0.1", 9200, "high", tls(("es.example.cn", "*.example.cn", "127.2.0.1"), ENCRYPT, "ab" * 32),
    hostname="ES.example.cn",
)  # fmt: skip
DEEP = served(
    "127.2.0.2", 9200, "medium", tls(("A.B.Example.CN",), "CN=a.b.example.cn", "cd" * 32, expired=True,
    self_signed=True),
)  # fmt: skip
OTHER = served("127.2.0.3", 9200, "medium", tls(("notexample.cn", "example.com"), ENCRYPT, "ab12" + "0" * 60))
HOSTILE = served(
    "127.2.0.4", 9200, "medium", tls((EVIL_NAME, "Mixed.CASE.test", "nul\x00.test"), EVIL_ISSUER, "ef" * 32)
)
PLAIN = served("127.2.0.5", 9200, "low", None)
POLICE = served("127.2.0.6", 9200, "critical", tls(("police.example.cn",), "CN=Police CA", "99" * 32))
NO_CERT = served("127.2.0.7", 9200, "medium", Tls("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", None))
APEX = served("127.2.0.8", 9200, "medium", tls(("example.cn",), "CN=Apex CA", "88" * 32))
ALL = (ES, DEEP, OTHER, HOSTILE, PLAIN, POLICE, NO_CERT, APEX)


@pytest.fixture(scope="module")
def store(new_index: Callable[[], str]) -> Store:
    store = Store(new_index())
    store.scans.begin("s1", FIRST, "127.2.0.0/24", "9200", 256, {})
    store.findings.add(list(ALL))
    store.scans.finish("s1", FIRST, "done")
    return store


def hosts(store: Store, query: str, *, public: bool = False) -> set[str]:
    page = store.search(query, limit=100, public=public)
    return {h.record["ip"].rsplit(".", 1)[1] for h in page.hits}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tls:true", {"1", "2", "3", "4", "6", "7", "8"}),
        ("tls:false", {"5"}),
        ("hostname:es.example.cn", {"1"}),
        ("hostname:*.EXAMPLE.cn", {"1"}),
        ("hostname:*", {"1"}),
        ("cert.name:es.example.cn", {"1"}),
        ("cert.name:ES.Example.CN", {"1"}),
        ("cert.name:127.2.0.1", {"1"}),
        ("cert.name:*.example.cn", {"1", "2", "6"}),  # the wildcard name, es., a.b. and police.; not the apex
        ('cert.name:"*.example.cn"', {"1"}),  # the literal wildcard name only
        ("cert.name:*example.cn", {"1", "2", "3", "6", "8"}),
        ("cert.name:example.*", {"3", "8"}),
        ("cert.name:e?.example.cn", {"1"}),
        ("cert.name:*", {"1", "2", "3", "4", "6", "8"}),
        ("cert.name:mixed.case.test", {"4"}),
        ("cert.issuer:*encrypt*", {"1", "3"}),
        ('cert.issuer:"cn=r11,o=let\'s encrypt,c=us"', {"1", "3"}),
        ("cert.issuer:*", {"1", "2", "3", "4", "6", "8"}),
        ("cert.sha256:" + "ab" * 32, {"1"}),
        ("cert.sha256:" + "AB" * 32, {"1"}),
        ('cert.sha256:"' + ":".join(["AB"] * 32) + '"', {"1"}),  # colons: quoted
        ("cert.sha256:ab*", {"1", "3"}),
        ("cert.sha256:AB12*", {"3"}),
        ("cert.expired:true", {"2"}),
        ("cert.expired:false", {"1", "3", "4", "6", "8"}),
        ("cert.self_signed:true", {"2"}),
        ("cert.self_signed:false AND cert.name:*.example.cn", {"1", "6"}),
        ("NOT tls:true", {"5"}),
    ],
)
def test_tls_fields(store: Store, query: str, expected: set[str]) -> None:
    assert hosts(store, query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cert.name:x%*", {"4"}),  # a literal % at the start, not "anything"
        ("cert.name:%*", set()),
        ("cert.name:_*", set()),
        ("cert.name:*%*", {"4"}),
        ("cert.name:*_*", {"4"}),
        ("cert.name:*.example._n", set()),
        ("cert.name:%.example.cn", set()),
        ("cert.name:*\\\\*", {"4"}),
        ("cert.name:*'*", {"4"}),
        ('cert.name:*\\"*', {"4"}),
        ('cert.name:"' + EVIL_NAME.replace("\\", "\\\\").replace('"', '\\"') + '"', {"4"}),
        ("cert.issuer:*%*", {"4"}),
        ("cert.issuer:*_*", {"4"}),
        ("cert.issuer:*\\\\*", {"4"}),
        ("cert.issuer:o=100%*", {"4"}),
        ("cert.issuer:o=1%*", set()),
        ('cert.issuer:"' + EVIL_ISSUER.replace("\\", "\\\\").replace('"', '\\"') + '"', {"4"}),
        ("hostname:%", set()),
        ("cert.name:nul.test", {"4"}),  # kept without its NUL (PostgreSQL refuses one in text)
    ],
)
def test_hostile_names_are_not_wildcards(store: Store, query: str, expected: set[str]) -> None:
    assert hosts(store, query) == expected


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("tls:maybe", "expected true or false"),
        ("cert.expired:1", "expected true or false"),
        ("cert.name:[a TO b]", "cert.name takes a name, not a range"),
        ("cert.sha256:zz", "is not a SHA-256 fingerprint"),
        ("cert.sha256:ab12", "is not a SHA-256 fingerprint"),
        ("cert.sha256:ab*12*", "is not a SHA-256 fingerprint"),
        ("cert.nam:x", "unknown field 'cert.nam'"),
    ],
)
def test_bad_values_are_one_line_errors(store: Store, query: str, words: str) -> None:
    with pytest.raises(QueryError, match="query error at column") as caught:
        store.search(query)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_the_issuer_facet_and_the_public_view(store: Store) -> None:
    everything = store.facets("", ["cert.issuer"])["cert.issuer"]
    assert (
        everything[0] == (ENCRYPT, 2) and ("CN=Police CA", 1) in everything and (EVIL_ISSUER, 1) in everything
    )
    public = store.facets("", ["cert.issuer"], public=True)["cert.issuer"]
    assert ("CN=Police CA", 1) not in public and public[0] == (ENCRYPT, 2)
    narrowed = store.facets("cert.name:*.example.cn", ["cert.issuer"], public=True)["cert.issuer"]
    assert set(narrowed) == {(ENCRYPT, 1), ("CN=a.b.example.cn", 1)}
    assert hosts(store, "cert.name:*.example.cn", public=True) == {"1", "2"}
    assert store.search("cert.name:police.example.cn", public=True).total == 0
    assert store.search('cert.issuer:"CN=Police CA"', public=True).total == 0


def test_a_service_seen_again_replaces_its_names(new_index: Callable[[], str]) -> None:
    store = Store(new_index())
    store.findings.add([ES])
    store.findings.add([replace(ES, tls=None, scan_id="s2")])
    assert hosts(store, "cert.name:*") == set() and hosts(store, "tls:false") == {"1"}


def test_an_index_of_the_previous_revision_is_derived_again(new_index: Callable[[], str]) -> None:
    """Services stored at 0006 (their search columns derived then, without TLS): after the upgrade their
    certificates are searchable, and a record written before TLS reads as plaintext."""
    db = new_index()
    engine = create_engine(_url(db))
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0006")
        for number, found in enumerate((ES, PLAIN), start=1):
            record = found.to_record()
            if found is PLAIN:
                del record["tls"], record["hostname"]
            conn.execute(
                text(
                    "INSERT INTO services (id, ip, ip_num, port, protocol, auth, exposed, severity,"
                    " first_seen, last_seen, last_scan_id, record, \"rank\", infected, collections)"
                    " VALUES (:id, :ip, :n, 9200, 'elasticsearch', 'none', true, :sev, :t, :t, 's1', :r, 3,"
                    " false, 0)"
                ),
                {"id": number, "ip": found.ip, "n": int(ipaddress.IPv4Address(found.ip)), "t": FIRST,
                 "sev": record["severity"], "r": json.dumps(record)},
            )  # fmt: skip
    engine.dispose()
    store = Store(db)
    assert hosts(store, "cert.name:*.example.cn AND hostname:es.example.cn AND tls:true") == {"1"}
    assert hosts(store, "tls:false") == {"5"} and hosts(store, "severity:high") == {"1"}
    assert store.facets("", ["cert.issuer"])["cert.issuer"] == [(ENCRYPT, 1)]
    assert _differences(db) == []


def test_report_by_certificate_domain(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "letters"
    shown = leaksonar(
        "report",
        "--domain",
        "Example.CN.",
        "--db",
        store.db,
        "--out",
        str(out),
        "--format",
        "md",
        "--dry-run",
    ).stdout
    assert shown.splitlines()[0] == "example.cn <no abuse contact known>: 4 service(s) to report"
    (letter,) = out.iterdir()
    body = letter.read_text()
    assert letter.name.startswith("example-cn-")
    assert all(f"127.2.0.{n}:9200" in body for n in (1, 2, 6, 8)) and "127.2.0.3" not in body
    subject = "Subject: \\[CRITICAL\\] 4 database services with TLS certificates for example\\.cn answer"
    assert body.startswith(subject)
    assert "We found 4 database services with TLS certificates for example\\.cn that answer" in body
    assert "your network" not in body


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--domain", "*.example.cn"), "--domain '*.example.cn' is not a domain name"),
        (("--domain", "a b"), "is not a domain name"),
        (("--domain", "a." * 100 + "cn"), "is not a domain name"),
        (("--domain", "example.cn", "--asn", "1"), "give exactly one of"),
    ],
)
def test_report_domain_errors(store: Store, tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    result = leaksonar("report", *args, "--db", store.db, "--out", str(tmp_path), check=False)
    assert result.returncode == 2 and words in result.stderr and result.stderr.count("\n") == 1


def test_the_web_issuer_facet_links_find_their_services(store: Store) -> None:
    """Every issuer of the public search page's facet (hostile ones too) links to a search that finds
    the services counted; a critical service's issuer is not among them."""
    web = TestClient(create_app(store, allowed_hosts=["testserver"], rate_limit=UNLIMITED))
    page = web.get("/search", params={"q": "tls:true"}).text
    links = [html.unescape(u) for u in re.findall(r'<a href="([^"]*)" title="add cert\.issuer:', page)]
    assert len(links) == 4 and "Police CA" not in page
    for link in links:
        found = web.get(link).text
        assert re.search(r">1 result<|>2 results<", found), link
    evil = next(u for u in links if "evil" in u)
    assert "127.2.0.4" in web.get(evil).text
