"""Disclosure reports on the lab: one letter per owner (Markdown and HTML) naming every exposed service with
its categories and row counts, no raw identifier, the remediation per protocol and the abuse contact; the
report history holds back re-sending until the reminder interval, unless forced."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import jsonl_records, lab_block, leaksonar
from test_no_raw_pii import seeded_identifiers

from leaksonar.formats import human_count
from leaksonar.lab.geo import write_lab_mmdbs
from leaksonar.report.history import History
from leaksonar.report.report import remediation
from leaksonar.store.db import Store

POLICE, HOSTING = "abuse@police-bureau.example", "abuse@cloud-hosting.example"


@pytest.fixture(scope="module")
def indexed(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The lab scanned with its mmdbs into a fresh index, and an owners file for it."""
    work = tmp_path_factory.mktemp("report")
    geo, asn = write_lab_mmdbs(work, lab["base"])
    db, jsonl = work / "index.db", work / "findings.jsonl"
    leaksonar(
        "scan",
        lab_block(lab),
        "--db",
        str(db),
        "--jsonl",
        str(jsonl),
        "--geo-db",
        str(geo),
        "--asn-db",
        str(asn),
    )
    couchdb = next(s for s in lab["services"] if s["protocol"] == "couchdb")
    owners = work / "owners.toml"
    owners.write_text(
        f'[[owner]]\norg = "Lab Police Bureau"\nnetwork = "{lab_block(lab)}"\nabuse = "{POLICE}"\n\n'
        f'[[owner]]\norg = "Lab Cloud Hosting"\nnetworks = ["{couchdb["ip"]}/32"]\nabuse = "{HOSTING}"\n'
    )
    _, records = jsonl_records(jsonl)
    return {
        "db": db,
        "owners": owners,
        "work": work,
        "couchdb": couchdb,
        "exposed": [r for r in records if r["exposed"]],
    }


def report(indexed: dict[str, Any], out: Path, *extra: str) -> str:
    block = str(ipaddress.IPv4Network(indexed["exposed"][0]["ip"] + "/24", strict=False))
    args = ("report", "--network", block, "--db", str(indexed["db"]), "--owners", str(indexed["owners"]))
    return leaksonar(*args, "--out", str(out), *extra).stdout


@pytest.fixture(scope="module")
def letters(indexed: dict[str, Any]) -> dict[str, Any]:
    out = indexed["work"] / "first"
    stdout = report(indexed, out)
    return {"stdout": stdout, "files": {p.name: p.read_text() for p in out.iterdir()}}


def letter_for(letters: dict[str, Any], record: dict[str, Any], suffix: str, couchdb_ip: str) -> str:
    owner = "lab-cloud-hosting" if record["ip"] == couchdb_ip else "lab-police-bureau"
    return next(
        text for name, text in letters["files"].items() if name.startswith(owner) and name.endswith(suffix)
    )


def test_one_letter_per_owner_and_format(letters: dict[str, Any]) -> None:
    names = sorted(letters["files"])
    assert len(names) == 4
    assert {n.rsplit(".", 1)[1] for n in names} == {"md", "html"}
    assert {n.split("-20")[0] for n in names} == {"lab-police-bureau", "lab-cloud-hosting"}


def test_letters_name_every_exposed_service_with_categories_and_rows(
    indexed: dict[str, Any], letters: dict[str, Any]
) -> None:
    for record in indexed["exposed"]:
        for suffix in (".md", ".html"):
            text = letter_for(letters, record, suffix, indexed["couchdb"]["ip"])
            assert f"{record['ip']}:{record['port']}" in text, (record["ip"], suffix)
            assert human_count(record["dataset"]["rows"]) in text
            for category in record.get("pii", {}):
                assert category in text, (record["ip"], category)
            for note in record["ransom"]["notes"]:
                assert all(address in text for address in note["btc_addresses"])


def test_letters_read_as_a_letter_with_contact_and_remediation(
    indexed: dict[str, Any], letters: dict[str, Any]
) -> None:
    table = remediation()
    for record in indexed["exposed"]:
        md = letter_for(letters, record, ".md", indexed["couchdb"]["ip"])
        abuse = HOSTING if record["ip"] == indexed["couchdb"]["ip"] else POLICE
        assert md.startswith("Subject: ") and f"To: {abuse}\n" in md
        assert "Dear " in md and "## Summary" in md and "## How we found this" in md and "[Name]" in md
        assert f"### {table[record['protocol']]['title']}" in md
        assert table[record["protocol"]]["steps"][0] in md
    police = letter_for(letters, indexed["exposed"][0], ".md", "")
    assert "requirepass" in police and "scram-sha-256" in police and "--auth" in police


def test_letters_hold_no_raw_identifier(letters: dict[str, Any]) -> None:
    identifiers = seeded_identifiers()
    for name, text in letters["files"].items():
        leaked = [value for value in identifiers if value in text]
        assert not leaked, f"{len(leaked)} raw identifiers in {name}, e.g. {leaked[:1]}"


def test_second_run_skips_recently_reported_then_force_resends(
    indexed: dict[str, Any], letters: dict[str, Any]
) -> None:
    again = indexed["work"] / "again"
    stdout = report(indexed, again)
    assert not again.exists() or not any(again.iterdir())
    for record in indexed["exposed"]:
        assert f"skipped {record['ip']}:{record['port']}: reported " in stdout
    forced = indexed["work"] / "forced"
    stdout = report(indexed, forced, "--force")
    assert len(list(forced.iterdir())) == 4 and "skipped" not in stdout


def test_reminder_intervals_follow_severity(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "index.db"))
    history = History(store)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def at(days: float) -> str:
        return (start + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    store.reports.record(
        "Org", [("127.0.0.1:6379", "critical", "s1"), ("127.0.0.2:6379", "low", "s1")], at(0)
    )
    store.reports.record("Org", [("127.0.0.3:6379", "medium", "s1")], at(0))
    assert not history.decide("Org", "127.0.0.1:6379", "critical", at(2.9), force=False).due
    assert history.decide("Org", "127.0.0.1:6379", "critical", at(3), force=False).due
    assert not history.decide("Org", "127.0.0.2:6379", "low", at(400), force=False).due
    assert history.decide("Org", "127.0.0.2:6379", "high", at(1), force=False).due  # severity rose
    assert not history.decide("Org", "127.0.0.3:6379", "medium", at(29), force=False).due
    assert history.decide("Other", "127.0.0.1:6379", "critical", at(1), force=False).due
    assert history.decide("Org", "127.0.0.1:6379", "critical", at(1), force=True).due


@pytest.mark.parametrize(
    ("args", "owners", "message"),
    [
        (("--network", "127.0.0.0/8", "--asn", "64500"), None, "exactly one of"),
        (("--network", "127.0.0.300/24"), None, "not an IP network"),
        (("--asn", "64500", "--format", "pdf"), None, "--format"),
        (("--asn", "64500"), '[[owner]]\norg = "X"\nnetwork = "10.0.0.0/33"\n', "owner #1 (X)"),
        (("--asn", "64500"), '[[owner]]\norg = "X"\nnetwork = "10.0.0.0/8"\nabuse = "nobody"\n', "e-mail"),
        (("--asn", "64500"), "[[owner]\n", "line 1: invalid TOML"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, args: tuple[str, ...], owners: str | None, message: str
) -> None:
    extra: tuple[str, ...] = ()
    if owners is not None:
        (tmp_path / "owners.toml").write_text(owners)
        extra = ("--owners", str(tmp_path / "owners.toml"))
    result = leaksonar(
        "report", *args, *extra, "--db", str(tmp_path / "i.db"), "--out", str(tmp_path), check=False
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
