"""`leaksonar export --format csv` of a real scan of the lab, read back: one row per stored service, every
documented column in its place and each cell saying what the record says."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from conftest import leaksonar

COLUMNS = [
    "ip", "port", "protocol", "software", "version", "auth", "exposed", "severity", "databases",
    "collections", "rows", "size_bytes", "pii", "ransom", "btc_addresses", "country", "asn", "org",
    "first_seen", "last_seen", "summary", "hostname", "tls_version", "cert_names", "cert_issuer",
    "cert_not_after", "cert_expired", "cert_sha256",
]  # fmt: skip
"""docs/cli.md's columns, in their documented order."""


@pytest.fixture(scope="module")
def exported(scanned: dict[str, Any]) -> tuple[list[dict[str, str]], dict[tuple[str, int], dict[str, Any]]]:
    """The CSV rows and the JSON records (by address) of the whole index."""
    db = str(scanned["db"])
    raw = leaksonar("export", "--db", db, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    records = [json.loads(line) for line in leaksonar("export", "--db", db).stdout.splitlines()]
    return rows, {(r["ip"], r["port"]): r for r in records}


def number(cell: str) -> int | None:
    return None if cell == "" else int(cell)


def test_every_service_is_one_row_with_the_documented_columns(
    exported: tuple[list[dict[str, str]], dict[tuple[str, int], Any]], scanned: dict[str, Any]
) -> None:
    rows, records = exported
    assert rows and list(rows[0]) == COLUMNS
    assert sorted((r["ip"], int(r["port"])) for r in rows) == sorted(scanned["records"])
    assert len(rows) == len(records)


def test_each_cell_reads_back_as_the_record_says(
    exported: tuple[list[dict[str, str]], dict[tuple[str, int], Any]],
) -> None:
    rows, records = exported
    for row in rows:
        record = records[row["ip"], int(row["port"])]
        dataset, software = record["dataset"], record.get("software") or {}
        where = f"{row['ip']}:{row['port']}"
        assert row["protocol"] == record["protocol"], where
        said = (software.get("name") or "", software.get("version") or "")
        assert (row["software"], row["version"]) == said, where
        assert row["auth"] == record["auth"] and row["auth"] in ("none", "required", "unknown"), where
        assert row["exposed"] == ("true" if record["exposed"] else "false"), where
        assert row["severity"] == record["severity"], where
        for column in ("databases", "collections", "rows", "size_bytes"):
            assert number(row[column]) == dataset.get(column), (where, column)
        assert set(row["pii"].split()) == set(record.get("pii") or {}), where
        assert row["ransom"] == ("true" if (record.get("ransom") or {}).get("infected") else "false")
        assert (row["first_seen"], row["last_seen"]) == (record["first_seen"], record["last_seen"])
        assert row["summary"] == record["summary"], where
        assert row["hostname"] == (record.get("hostname") or ""), where
        tls = record.get("tls") or {}
        cert = tls.get("cert") or {}
        assert row["tls_version"] == (tls.get("version") or ""), where
        assert row["cert_names"].split() == list(cert.get("names", ())), where
        assert row["cert_sha256"] == (cert.get("sha256") or ""), where
        assert row["cert_expired"] == {None: "", True: "true", False: "false"}[cert.get("expired")], where


def test_the_lab_gives_every_kind_of_cell(exported: tuple[list[dict[str, str]], dict[Any, Any]]) -> None:
    """The comparison above is not vacuous: the lab holds open, closed, TLS, ransomed and PII services."""
    rows, _ = exported
    assert {"none", "required"} <= {r["auth"] for r in rows}
    assert any(r["ransom"] == "true" and r["btc_addresses"] for r in rows)
    assert any(r["pii"] for r in rows) and any(r["cert_sha256"] and r["tls_version"] for r in rows)
    assert any(r["rows"] and int(r["rows"]) > 0 for r in rows)
