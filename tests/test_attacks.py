"""The lab's attacked services, seeded like the victims of the public ransom waves (a Redis cron-job and
SSH-key plant, the MySQL wave's RECOVER_YOUR_DATA wipe, a note table among leftovers in PostgreSQL), are
found infected by a scan, with the notes' places and exact BTC addresses; the clean ones are not."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
import pymysql
import pytest
import redis

from leaksonar.assess.ransom import valid_btc_address, valid_onion
from leaksonar.lab import data, lab_digest, lab_down, lab_up
from leaksonar.model import SEVERITY_RANK

ATTACKED = ("redis-attacked", "mariadb-ransomed", "postgres-ransomed", "hdfs-wiped")
SUMMARY = {
    "redis-attacked": ("CRON-JOB ATTACK (4 keys)", "SSH KEY PLANTED (1 key)"),
    "mariadb-ransomed": ("RANSOM NOTE (1 BTC address, asks 0.03 BTC)",),
    "postgres-ransomed": ("RANSOM NOTE (1 BTC address, asks 0.04 BTC)",),
    "hdfs-wiped": ("RANSOM NOTE", "DATA WIPED"),
}
"""What each attacked service's one-line summary must say about the attack."""
ATTACK_WORDS = re.compile(r"RANSOM|ATTACK|PLANTED|WIPE", re.IGNORECASE)


def _record(scanned: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
    return scanned["records"][(service["ip"], service["port"])]


def _named(where: str, name: str) -> bool:
    """`name` appears in `where` as a whole word (database, table or key name)."""
    return re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", where) is not None


def _names_place(where: str, place: dict[str, str]) -> bool:
    database = place["database"]  # "" for a file store's single tree
    return _named(where, place.get("key") or place["collection"]) and (
        not database or _named(where, database)
    )


def test_the_lab_holds_the_attacked_services(lab: dict[str, Any]) -> None:
    attacked = {s["name"]: s["attack"] for s in lab["services"] if "attack" in s}
    assert set(attacked) == set(ATTACKED)
    for name, attack in attacked.items():
        assert attack["infected"] is True and attack["places"], name
        assert all(valid_btc_address(a) for a in attack["btc_addresses"]), name
        assert all(valid_onion(o) for o in attack["onion"]), name
        assert all(e.endswith("@example.invalid") for e in attack["emails"]), name
    assert attacked["mariadb-ransomed"]["btc_addresses"] != attacked["postgres-ransomed"]["btc_addresses"]


@pytest.mark.parametrize("name", ATTACKED)
def test_attacked_service_is_found_with_its_notes(
    lab_service: Any, scanned: dict[str, Any], name: str
) -> None:
    service = lab_service(name)
    attack, record = service["attack"], _record(scanned, service)
    ransom = record["ransom"]
    assert ransom["infected"] is True
    notes = ransom["notes"]
    assert len(notes) == len(attack["places"]), notes
    for place in attack["places"]:
        assert sum(_names_place(n["where"], place) for n in notes) == 1, (place, [n["where"] for n in notes])
    assert sorted({a for n in notes for a in n["btc_addresses"]}) == sorted(attack["btc_addresses"])
    assert sorted({e for n in notes for e in n["emails"]}) == sorted(attack["emails"])
    assert sorted({o for n in notes for o in n["onion"]}) == sorted(attack["onion"])
    amounts = {n["amount_btc"] for n in notes if n["amount_btc"] is not None}
    assert amounts == ({attack["amount_btc"]} if attack["amount_btc"] is not None else set())
    assert SEVERITY_RANK[record["severity"]] >= SEVERITY_RANK["high"], record["severity"]
    for phrase in SUMMARY[name]:
        assert phrase in record["summary"], record["summary"]
    assert ("DATA WIPED" in record["summary"]) is attack["wiped"], record["summary"]


def test_cron_job_notes_quote_the_planted_lines(lab_service: Any, scanned: dict[str, Any]) -> None:
    service = lab_service("redis-attacked")
    excerpts = {n["where"]: n["excerpt"] for n in _record(scanned, service)["ransom"]["notes"]}
    for key, value in {**data.CRON_KEYS, **data.SSH_KEY_PLANT}.items():
        assert excerpts[f"key {key} in db 0"] == value.strip()


def test_attacked_and_holding_personal_data_is_critical(lab_service: Any, scanned: dict[str, Any]) -> None:
    """redis-attacked keeps the user hashes the application wrote after the attack."""
    record = _record(scanned, lab_service("redis-attacked"))
    assert {"name", "phone", "email"} <= set(record["pii"])
    assert record["severity"] == "critical"


def test_clean_services_raise_no_alarm(lab: dict[str, Any], scanned: dict[str, Any]) -> None:
    clean = [s for s in lab["services"] if "attack" not in s]
    assert len(clean) == len(lab["services"]) - len(ATTACKED)
    for service in clean:
        record = _record(scanned, service)
        assert record["ransom"] == {"infected": False, "notes": []}, service["name"]
        assert not ATTACK_WORDS.search(record["summary"]), (service["name"], record["summary"])


def test_scan_leaves_the_attacked_services_as_they_were(scanned: dict[str, Any]) -> None:
    for name in ATTACKED:
        assert scanned["after"][name] == scanned["before"][name], name


def test_personal_data_of_an_attacked_service_stays_masked(scanned: dict[str, Any]) -> None:
    users = data.redis_attacked().hashes[0].values()
    values = {user[field] for user in users for field in ("phone", "email")}
    assert len(values) == 6
    printed = scanned["jsonl"].read_text() + scanned["stdout"]
    assert not [v for v in values if v in printed]


def test_digest_sees_a_changed_note(lab: dict[str, Any]) -> None:
    """lab_digest covers what the attackers left: changing it changes the digest (on a lab of its own)."""
    base = str(ipaddress.IPv4Address(lab["base"]) + 768)
    directory = Path(tempfile.mkdtemp(prefix="leaksonar-lab4-"))
    try:
        # hdfs-wiped's stand-in is read-only: nothing it holds can be changed to see the digest move
        manifest = lab_up(directory, base, services=[n for n in ATTACKED if n != "hdfs-wiped"])
        entries = {s["name"]: s for s in manifest["services"]}
        before = {name: lab_digest(entry) for name, entry in entries.items()}
        entry = entries["redis-attacked"]
        with redis.Redis(host=entry["ip"], port=entry["port"], socket_timeout=5) as client:
            client.set("backup3", "\n\n\n*/4 * * * * root true\n\n")
        entry = entries["mariadb-ransomed"]
        conn = pymysql.connect(
            host=entry["ip"], port=entry["port"], user="root", password="", autocommit=True
        )
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "UPDATE RECOVER_YOUR_DATA.RECOVER_YOUR_DATA SET bitcoin_address = '' WHERE id = 1"
                )
        finally:
            conn.close()
        asyncio.run(_pg_execute(entries["postgres-ransomed"], "webapp", "UPDATE readme SET btc = ''"))
        after = {name: lab_digest(entry) for name, entry in entries.items()}
        assert all(after[name] != before[name] for name in entries), (before, after)
    finally:
        if (directory / "manifest.json").exists():
            lab_down(directory)
    assert not directory.exists()


async def _pg_execute(entry: dict[str, Any], database: str, sql: str) -> None:
    conn = await asyncpg.connect(
        host=entry["ip"], port=entry["port"], user="postgres", database=database, timeout=5
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
