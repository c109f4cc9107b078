"""Services behind TLS as users see them: findings with a hostname and a certificate, stored through the
store API, then shown on the host page (to an analyst and to a public viewer), in the disclosure letters
(Markdown rendered, HTML), in the CSV export and by `leaksonar show`; a plaintext service shows none of it."""

from __future__ import annotations

import csv
import io
import re
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from conftest import leaksonar
from fastapi.testclient import TestClient
from hostile_text import MARKDOWN_RENDERERS
from test_hostile_outputs import visible
from test_ui import text

from leaksonar.model import Assessment, Certificate, Finding, PiiHit, Software, Tls
from leaksonar.report import FORMATS, Selection, load_owners, plan, write_reports
from leaksonar.store.db import Store
from leaksonar.web.app import create_app

NOW = "2026-11-28T05:00:00Z"
ES, REDIS, PLAIN, MANY = "127.20.0.5", "127.20.0.6", "127.20.0.7", "127.20.0.8"
LETS_ENCRYPT = "CN=R11,O=Let's Encrypt,C=US"
SHA_ES, SHA_REDIS = "ab" * 32, "cd" * 32
ES_CERT = Certificate(
    "CN=es.example.cn,O=Example Police Bureau",
    ("es.example.cn", "*.example.cn", ES),
    LETS_ENCRYPT,
    "2026-10-01T00:00:00Z",
    "2026-12-30T00:00:00Z",
    False,
    False,
    SHA_ES,
    "EC secp256r1",
)
REDIS_CERT = Certificate(
    "CN=cache.internal",
    ("cache.internal",),
    "CN=cache.internal",
    "2024-01-01T00:00:00Z",
    "2025-01-01T00:00:00Z",
    True,
    True,
    SHA_REDIS,
    "RSA 2048",
)

MANY_CERT = Certificate(
    "CN=n0.example.cn",
    tuple(f"n{number}.example.cn" for number in range(25)),
    LETS_ENCRYPT,
    "2026-10-01T00:00:00Z",
    "2026-12-30T00:00:00Z",
    False,
    False,
    "ef" * 32,
    "RSA 2048",
)
"""A certificate of 25 names: a letter lists 20 of them."""


def synthetic_finding(
    ip: str, port: int, protocol: str, severity: str, scan_id: str = "tls", **tls: object
) -> Finding:
    """An exposed service of 5,000 rows (with phones when `severity` is high); `tls`: hostname, tls."""
    return Finding(
        ip, port, protocol, Software(protocol, "1.0"), "none", True, NOW, scan_id,
        databases=1, rows=5_000, size_bytes=9_000,
        assessment=Assessment(
            {"phone": PiiHit(5, 5, ("sjhm",), "138****0000")} if severity == "high" else {},
            {}, False, (), severity, f"{protocol}: synthetic",  # type: ignore[arg-type]
        ),
        **tls,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Elasticsearch scanned as es.example.cn behind a Let's Encrypt certificate; Redis behind an expired
    self-signed one, scanned by address; a plaintext PostgreSQL."""
    db = tmp_path_factory.mktemp("tls") / "index.db"
    store = Store(str(db))
    store.scans.begin("tls", NOW, targets="127.20.0.0/24", ports="9200,6379,5432", size=768, options={})
    store.findings.add(
        [
            synthetic_finding(
                ES, 9200, "elasticsearch", "high",
                hostname="es.example.cn", tls=Tls("TLSv1.3", "TLS_AES_256_GCM_SHA384", ES_CERT),
            ),
            synthetic_finding(
                REDIS, 6379, "redis", "medium", tls=Tls("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", REDIS_CERT)
            ),
            synthetic_finding(PLAIN, 5432, "postgresql", "medium"),
            synthetic_finding(
                MANY, 5984, "couchdb", "medium", tls=Tls("TLSv1.3", "TLS_AES_128_GCM_SHA256", MANY_CERT)
            ),
        ]
    )  # fmt: skip
    store.scans.finish("tls", NOW, "done")
    return db


@pytest.mark.parametrize("anonymous", ["analyst", "public"])
def test_host_page_shows_the_certificate(index: Path, anonymous: str) -> None:
    """Public viewers see the certificate as analysts do: it names the owner, not the data."""
    client = TestClient(create_app(Store(str(index)), allowed_hosts=["testserver"], anonymous=anonymous))
    shown = text(client.get(f"/host/{ES}").text)
    assert "elasticsearch tls" in shown  # the services table's chip
    assert "Scanned as es.example.cn" in shown
    assert "TLS TLSv1.3, TLS_AES_256_GCM_SHA384" in shown
    assert f"Certificate names es.example.cn, *.example.cn, {ES}" in shown
    assert "Subject CN=es.example.cn,O=Example Police Bureau" in shown
    assert (
        f"Issuer {LETS_ENCRYPT} Valid 2026-10-01 00:00 UTC to 2026-12-30 00:00 UTC Key EC secp256r1" in shown
    )
    assert f"SHA-256 {SHA_ES}" in shown
    assert "expired" not in shown and "self-signed" not in shown
    redis = text(client.get(f"/host/{REDIS}").text)
    assert "Scanned as" not in redis
    assert (
        "Issuer CN=cache.internal self-signed Valid 2024-01-01 00:00 UTC to 2025-01-01 00:00 UTC expired"
        in redis
    )
    plain = text(client.get(f"/host/{PLAIN}").text)
    assert "postgresql" in plain and "Certificate" not in plain and " tls " not in plain
    found = text(client.get("/search", params={"q": "ip:127.20.0.0/24"}).text)
    assert f"{ES}:9200 elasticsearch+tls" in found and f"{PLAIN}:5432 postgresql" in found


@pytest.fixture(scope="module")
def letters(index: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out, store = tmp_path_factory.mktemp("letters"), Store(str(index))
    plans = plan(store, Selection(network=IPv4Network("127.20.0.0/24")), load_owners(None), NOW, False)
    write_reports(store, plans, out, FORMATS, NOW, record=False)
    return {p.suffix: p.read_text(encoding="utf-8") for p in out.iterdir()}


ES_LINE = (
    f"Speaks TLS (TLSv1.3); its TLS certificate names: es.example.cn, *.example.cn, {ES} "
    f"(issued by {LETS_ENCRYPT}, expires 2026-12-30)"
)
REDIS_LINE = (
    "Speaks TLS (TLSv1.2); its TLS certificate names: cache.internal "
    "(issued by CN=cache.internal, self-signed, expired 2025-01-01)"
)


@pytest.mark.parametrize("renderer", MARKDOWN_RENDERERS.values(), ids=MARKDOWN_RENDERERS.keys())
def test_markdown_letter_names_the_certificate(letters: dict[str, str], renderer: object) -> None:
    shown = " ".join(visible(renderer.render(letters[".md"])).split())  # type: ignore[attr-defined]
    assert "Reached by the name es.example.cn" in shown
    assert ES_LINE in shown and REDIS_LINE in shown
    assert shown.count("Speaks TLS") == 3 and shown.count("Reached by the name") == 1
    assert "n18.example.cn, n19.example.cn and 5 more (issued by" in shown and "n20" not in shown


def test_html_letter_names_the_certificate(letters: dict[str, str]) -> None:
    shown = " ".join(visible(letters[".html"]).split())
    assert "Reached by the name es.example.cn" in shown
    assert ES_LINE in shown and REDIS_LINE in shown


def test_csv_export_has_the_tls_columns_at_the_end(index: Path) -> None:
    rows = list(
        csv.DictReader(io.StringIO(leaksonar("export", "--db", str(index), "--format", "csv").stdout))
    )
    assert list(rows[0])[-8:] == [
        "summary", "hostname", "tls_version", "cert_names", "cert_issuer", "cert_not_after", "cert_expired",
        "cert_sha256",
    ]  # fmt: skip
    by_ip = {row["ip"]: row for row in rows}
    tls_columns = ("hostname", "tls_version", "cert_names", "cert_issuer", "cert_not_after", "cert_expired")
    assert [by_ip[ES][c] for c in (*tls_columns, "cert_sha256")] == [
        "es.example.cn", "TLSv1.3", f"es.example.cn *.example.cn {ES}", LETS_ENCRYPT, "2026-12-30T00:00:00Z",
        "false", SHA_ES,
    ]  # fmt: skip
    assert [by_ip[REDIS][c] for c in tls_columns] == [
        "",
        "TLSv1.2",
        "cache.internal",
        "CN=cache.internal",
        "2025-01-01T00:00:00Z",
        "true",
    ]
    assert [by_ip[PLAIN][c] for c in (*tls_columns, "cert_sha256")] == [""] * 7


def test_show_prints_the_name_and_the_certificate(index: Path) -> None:
    es = leaksonar("show", ES, "--db", str(index)).stdout
    assert "elasticsearch+tls" in es
    assert re.search(rf"{ES}:9200 \(es\.example\.cn\) first seen", es)
    assert (
        "tls TLSv1.3 TLS_AES_256_GCM_SHA384, cert es.example.cn (+2 names), "
        f"issuer {LETS_ENCRYPT}, expires 2026-12-30\n"
    ) in es
    redis = leaksonar("show", f"{REDIS}:6379", "--db", str(index)).stdout
    assert (
        "cert cache.internal, issuer CN=cache.internal, expires 2025-01-01 [expired] [self-signed]\n" in redis
    )
    plain = leaksonar("show", PLAIN, "--db", str(index)).stdout
    assert "postgresql " in plain and "+tls" not in plain and "tls " not in plain
