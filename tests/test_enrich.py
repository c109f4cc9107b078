"""Enrichment end to end on the lab: the lab's own MaxMind databases give each finding its country, ASN and
organisation, in the JSON records, the index and the tables; a file that is not an mmdb is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import jsonl_records, leaksonar, leaksonar_here

from leaksonar.lab import service
from leaksonar.lab.geo import BLOCK_OWNER, OFFSET_OWNERS, lab_owner, write_lab_mmdbs
from leaksonar.scan.enrich import Enricher

NAMES = ("opensearch-open", "couchdb-open", "redis-auth")
"""One service in the lab's base network, one in the other network, one that needs a password."""


@pytest.fixture(scope="module")
def mmdbs(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_lab_mmdbs(tmp_path_factory.mktemp("mmdb"), lab["base"])


def scan(lab: dict[str, Any], db: Path, *options: str) -> dict[tuple[str, int], dict[str, Any]]:
    chosen = [service(lab, name) for name in NAMES]
    ports = ",".join(sorted({str(s["port"]) for s in chosen}))
    jsonl = db.with_suffix(".jsonl")
    leaksonar(
        "scan", *(s["ip"] for s in chosen), "-p", ports, "--db", str(db), "--jsonl", str(jsonl), *options
    )
    _, records = jsonl_records(jsonl)
    return {(r["ip"], r["port"]): r for r in records}


def test_findings_carry_country_asn_and_org(
    lab: dict[str, Any], mmdbs: tuple[Path, Path], tmp_path: Path
) -> None:
    db = tmp_path / "index.db"
    records = scan(lab, db, "--geo-db", str(mmdbs[0]), "--asn-db", str(mmdbs[1]))
    assert OFFSET_OWNERS[24] != BLOCK_OWNER
    for name in NAMES:
        entry = service(lab, name)
        owner = lab_owner(lab["base"], entry["ip"])
        assert owner is not None
        record = records[(entry["ip"], entry["port"])]
        assert record["geo"] == {"country": owner.country}, name
        assert record["network"] == {"asn": owner.asn, "org": owner.org}, name
        stored = json.loads(
            leaksonar_here("show", f"{entry['ip']}:{entry['port']}", "--db", str(db), "--json").stdout
        )
        assert stored["geo"] == record["geo"] and stored["network"] == record["network"]
    table = leaksonar_here("show", service(lab, "couchdb-open")["ip"], "--db", str(db)).stdout
    assert "cc" in table and " US " in table


def test_databases_from_the_environment(
    lab: dict[str, Any], mmdbs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKSONAR_GEOIP", str(mmdbs[0]))
    monkeypatch.setenv("LEAKSONAR_ASN_DB", str(mmdbs[1]))
    entry = service(lab, "opensearch-open")
    record = scan(lab, tmp_path / "index.db")[(entry["ip"], entry["port"])]
    assert record["geo"] == {"country": "CN"}
    assert record["network"] == {"asn": 64500, "org": "Lab Police Bureau Network"}


def test_missing_databases_give_no_geo(lab: dict[str, Any], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.mmdb"
    records = scan(lab, tmp_path / "index.db", "--geo-db", str(missing), "--asn-db", str(missing))
    assert records and all("geo" not in r and "network" not in r for r in records.values())


@pytest.mark.parametrize("option", ["--geo-db", "--asn-db"])
def test_a_file_that_is_not_an_mmdb_is_refused(option: str, tmp_path: Path) -> None:
    bogus = tmp_path / "country.mmdb"
    bogus.write_text("not a database\n")
    db = tmp_path / "index.db"
    result = leaksonar("scan", "127.0.0.1", "-p", "1", "--db", str(db), option, str(bogus), check=False)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and str(bogus) in result.stderr and "MaxMind" in result.stderr
    assert not db.exists()


def test_addresses_outside_the_databases_get_nothing(lab: dict[str, Any], mmdbs: tuple[Path, Path]) -> None:
    with Enricher.open(str(mmdbs[0]), str(mmdbs[1])) as enricher:
        assert enricher.lookup("127.0.0.1") == (None, None)
        assert enricher.lookup(str(service(lab, "redis-open")["ip"]))[0] == {"country": "CN"}
