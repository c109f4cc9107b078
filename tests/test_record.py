"""The finding record: its published JSON Schema is the one generated from leaksonar.model.record, real
scan output of every protocol in the lab validates against it, and a record with a wrong type, a missing
key or an unknown key does not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from leaksonar.model import Finding
from leaksonar.model.schema import finding_schema, schema_text
from tests.conftest import jsonl_records, leaksonar

PUBLISHED = Path(__file__).parents[1] / "docs" / "finding.schema.json"
VALIDATOR = Draft202012Validator(finding_schema())

ASSESSED: dict[str, Any] = {
    "ip": "127.20.0.5",
    "port": 9200,
    "protocol": "elasticsearch",
    "software": {"name": "elasticsearch", "version": "7.10.2"},
    "auth": "none",
    "exposed": True,
    "dataset": {"databases": None, "collections": 1, "rows": 970000, "size_bytes": 23000000000},
    "collections": [
        {
            "database": "",
            "name": "person",
            "rows": 970000,
            "size_bytes": 0,
            "rows_estimated": False,
            "fields": ["xm", "sfzh"],
            "pii": ["name", "national_id"],
        },
    ],
    "pii": {
        "national_id": {"matches": 18, "sampled": 20, "fields": ["sfzh"], "example": "3101**********123X"}
    },
    "ransom": {
        "infected": True,
        "notes": [
            {
                "where": "index read_me",
                "excerpt": "pay",
                "btc_addresses": ["1BoatSLRHtKNngkdXEeobR76b53LETtpyT"],
                "emails": [],
                "amount_btc": 10.0,
                "onion": [],
            },
        ],
    },
    "rows_estimated": False,
    "severity": "critical",
    "summary": "Elasticsearch 7.10.2 without authentication: 1 index, 970,000 documents, 23 GB; national IDs",
    "time": "2026-11-28T05:00:00Z",
    "scan_id": "s1",
    "errors": [{"kind": "timeout", "message": "index person: count timed out"}],
    "details": {"via": "kibana"},
    "geo": {"country": "CN"},
    "network": {"asn": 37963, "org": "Example"},
    "hostname": "es.example.cn",
    "tls": {
        "version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "cert": {
            "subject": "CN=es.example.cn",
            "names": ["es.example.cn", "*.example.cn", "127.20.0.5"],
            "issuer": "CN=R11,O=Let's Encrypt,C=US",
            "not_before": "2026-10-01T00:00:00Z",
            "not_after": "2026-12-30T00:00:00Z",
            "self_signed": False,
            "expired": False,
            "sha256": "ab" * 32,
            "key": "EC secp256r1",
        },
    },
}
"""A record as DESIGN.md draws it."""


def problems(record: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(record)]


def test_the_published_schema_is_the_generated_one() -> None:
    """To publish a changed record: python -m leaksonar.model.schema > docs/finding.schema.json"""
    assert PUBLISHED.read_text() == schema_text()
    Draft202012Validator.check_schema(json.loads(PUBLISHED.read_text()))


def test_every_record_of_a_scan_of_the_whole_lab_is_valid(scanned: dict[str, Any]) -> None:
    _, records = jsonl_records(scanned["jsonl"])
    assert len({r["protocol"] for r in records}) >= 10
    invalid = {f"{r['ip']}:{r['port']} {r['protocol']}": problems(r) for r in records if problems(r)}
    assert not invalid


def test_every_record_of_a_scan_reads_back_as_itself(scanned: dict[str, Any]) -> None:
    for record in scanned["records"].values():
        assert Finding.from_record(record).to_record() == record


@pytest.mark.parametrize(
    "record",
    [
        ASSESSED,
        {k: v for k, v in ASSESSED.items() if k not in ("pii", "ransom", "severity", "summary")}
        | {
            "software": None,
            "hostname": None,
            "tls": None,
            "auth": "required",
            "exposed": False,
            "collections": [],
            "dataset": {"databases": None, "collections": 0, "rows": None, "size_bytes": None},
        },
    ],
    ids=["assessed", "not-assessed"],
)
def test_records_as_designed_are_valid_and_read_back(record: dict[str, Any]) -> None:
    assert problems(record) == []
    assert Finding.from_record(record).to_record() == record


DROP = object()
"""As a tampered value: remove the key."""


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("port", "9200"),
        ("exposed", "yes"),
        ("auth", "anonymous"),
        ("severity", "severe"),
        ("dataset.rows", 1.5),
        ("dataset.rows", True),
        ("collections.0.fields", "xm"),
        ("collections.0.pii", ["shoe_size"]),
        ("pii.shoe_size", ASSESSED["pii"]["national_id"]),
        ("ransom.notes.0.amount_btc", "10"),
        ("errors", [{"kind": "timeout"}]),
        ("geo", "CN"),
        ("rows_estimated", "no"),
        ("rows_estimated", DROP),
        ("collections.0.rows_estimated", DROP),
        ("ip", DROP),
        ("scan_id", DROP),
        ("dataset.size_bytes", DROP),
        ("collections.0.name", DROP),
        ("pii.national_id.example", DROP),
        ("password", "hunter2"),
        ("dataset.tables", 3),
        ("software.build", "x"),
        ("pii.national_id.values", ["310101199001011234"]),
        ("ransom.notes.0.body", "..."),
    ],
)
def test_a_tampered_record_is_refused(path: str, value: Any) -> None:
    record = copy.deepcopy(ASSESSED)
    *parents, last = path.split(".")
    target: Any = record
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is DROP:
        del target[last]
    else:
        target[last] = value
    assert problems(record), f"{path} = {value!r} passed"


def test_records_stored_before_error_kinds_are_read_in_todays_shape(tmp_path: Path) -> None:
    """An index written by the previous release holds errors as plain sentences: every read (services,
    search hits, stored findings) answers the published shape, with kind "unknown"."""
    from sqlalchemy import update

    from leaksonar.store.db import Store
    from leaksonar.store.schema import findings, services

    store = Store(str(tmp_path / "index.db"))
    store.scans.begin("old", ASSESSED["time"], targets="127.20.0.5", ports="9200", size=1, options={})
    store.findings.add([Finding.from_record({**ASSESSED, "scan_id": "old"})])
    old = {**ASSESSED, "scan_id": "old", "errors": ["index person: count timed out"]}
    with store.engine.begin() as conn:
        conn.execute(update(services).values(record=old))
        conn.execute(update(findings).values(record=old))
    [service] = store.services.on("127.20.0.5")
    [hit] = store.search("").hits
    stored = store.findings.get(hit.id or 0)
    assert stored is not None
    for record in (service.record, hit.to_record(), stored.to_record()):
        assert record["errors"] == [{"kind": "unknown", "message": "index person: count timed out"}]
        assert problems({k: v for k, v in record.items() if k not in ("id", "first_seen", "last_seen")}) == []
    assert problems(old) != []  # the old shape itself is not today's


def test_records_stored_before_rows_estimated_read_as_the_servers_own_counts(tmp_path: Path) -> None:
    """An index written before `rows_estimated` existed: its records are read with the flag false, valid
    against the published schema; an estimated count stored today is read back as one."""
    from sqlalchemy import update

    from leaksonar.store.db import Store
    from leaksonar.store.schema import services

    store = Store(str(tmp_path / "index.db"))
    store.scans.begin("old", ASSESSED["time"], targets="127.20.0.5", ports="9200", size=1, options={})
    estimated = copy.deepcopy({**ASSESSED, "scan_id": "old", "rows_estimated": True})
    estimated["collections"][0]["rows_estimated"] = True
    store.findings.add([Finding.from_record(estimated)])
    [hit] = store.search("").hits
    assert hit.record["rows_estimated"] and hit.record["collections"][0]["rows_estimated"]
    shown = leaksonar("show", "127.20.0.5:9200", "--db", str(tmp_path / "index.db")).stdout
    assert "~970,000" in shown

    old = copy.deepcopy({k: v for k, v in estimated.items() if k != "rows_estimated"})
    del old["collections"][0]["rows_estimated"]
    with store.engine.begin() as conn:
        conn.execute(update(services).values(record=old))
    [service] = store.services.on("127.20.0.5")
    assert service.record["rows_estimated"] is False
    assert service.record["collections"][0]["rows_estimated"] is False
    assert problems(service.record) == []
