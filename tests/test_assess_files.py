"""Assessment of files and object stores: file-name categories, ransom notes as files, heads of small
text files, and the payment-demand rule for every kind of store."""

from __future__ import annotations

import json

import pytest
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leaksonar.assess import assess
from leaksonar.assess.filenames import file_categories
from leaksonar.assess.heads import MAX_CELL, MAX_COLUMNS, MAX_ROWS, head_rows
from leaksonar.model import Collection, Inspection, Sample, Software

P2PKH = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
P2SH = "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"
BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"

_fake = Faker("zh_CN")
_fake.seed_instance(17)
PEOPLE = [(_fake.name(), _fake.ssn(), _fake.phone_number(), _fake.email()) for _ in range(12)]


def redis(keys: dict[str, object]) -> Inspection:
    """Redis database 0 holding `keys`, as the Redis inspector samples them."""
    docs = tuple({"key": k, "type": "string", "value": v} for k, v in keys.items())
    return Inspection(
        "redis",
        None,
        "none",
        collections=(Collection("0", "db0", len(keys)),),
        samples=(Sample("0", "db0", docs),),
        rows=len(keys),
    )


def bucket(files: dict[str, bytes | None], protocol: str = "s3", name: str = "backups") -> Inspection:
    """One bucket listing `files`, as a storage module presents it (assess.filenames): a head is given
    for the small text files that were read."""
    docs = tuple({"key": k, "size": 1000} | ({"value": v} if v is not None else {}) for k, v in files.items())
    return Inspection(
        protocol,
        Software("minio", "2024"),
        "none",
        collections=(Collection("", name, len(files), 1000 * len(files)),),
        samples=(Sample("", name, docs),),
        rows=len(files),
        size_bytes=1000 * len(files),
    )


# --- file names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "categories"),
    [
        ("backups/2024/shop.sql.gz", ("database_dump",)),
        ("prod.dump", ("database_dump",)),
        ("MSSQL/Sales_full.bak", ("database_dump",)),
        ("shop.sql.bak", ("database_dump",)),
        ("access/orders.accdb", ("database_dump",)),
        ("app/data.sqlite3", ("database_dump",)),
        ("var/app.db", ("database_dump",)),
        ("mysqldump-2024-01-01.gz", ("database_dump",)),
        ("pg_dump_prod.tar.gz", ("database_dump",)),
        ("nightly/db_backup.zip", ("database_dump",)),
        ("C:\\Backups\\CRM.SQL", ("database_dump",)),
        (".env", ("secret",)),
        ("site/.env.production", ("secret",)),
        (".env.bak", ("secret",)),
        ("home/deploy/.ssh/id_rsa", ("secret",)),
        ("id_ed25519", ("secret",)),
        ("certs/server.key", ("secret",)),
        ("tls/privkey.pem", ("secret",)),
        ("client.p12", ("secret",)),
        ("Passwords.kdbx", ("secret",)),
        ("home/u/.aws/credentials", ("secret",)),
        (".git-credentials", ("secret",)),
        ("www/wp-config.php", ("secret",)),
        ("www/wp-config.php.old", ("secret",)),
        ("exports/customers_2024.csv", ("name",)),
        ("用户信息.xlsx", ("name",)),
        ("导出/会员名单.csv", ("name",)),
        ("yonghu.json", ("name",)),
        ("shenfenzheng.csv", ("national_id",)),
        ("身份证号.csv", ("national_id",)),
        ("phone_numbers.xlsx", ("phone",)),
        ("passwords.txt", ("password",)),
        ("dump/users.sql", ("database_dump", "name")),
    ],
)
def test_file_names_say_what_files_hold(path: str, categories: tuple[str, ...]) -> None:
    assert file_categories(path) == categories


@pytest.mark.parametrize(
    "path",
    [
        "id.txt",
        "key.js",
        "src/keyboard.py",
        "backup_instructions.md",
        "docs/how-to-backup-your-db.html",
        "Thumbs.db",
        "id_rsa.pub",
        ".env.example",
        "dists/bookworm/Release.key",
        "public.pem",
        "fullchain.pem",
        "user_guide.pdf",
        "customer_template.xlsx",
        "customers.js",
        "img/phone.png",
        "sql/",
        "README.md",
        "x.tar.gz",
        "",
        "/",
        "..",
    ],
)
def test_near_misses_say_nothing(path: str) -> None:
    assert file_categories(path) == ()


def test_named_files_raise_severity_and_show_in_the_summary() -> None:
    plain = assess(bucket({"img/logo.png": None, "index.html": None}))
    assert plain.severity == "medium" and not plain.infected
    found = assess(
        bucket({"db/shop.sql.gz": None, "deploy/.env": None, "exports/customers.csv": None, "logo.png": None})
    )
    assert found.severity == "high"
    assert found.summary == (
        "MinIO 2024 without authentication: 1 bucket, 4 objects, 4 kB; "
        "1 database dump, 1 secret file, 1 file named for personal data"
    )
    assert not found.pii  # a name alone is no personal data found


def test_database_store_is_not_read_as_files() -> None:
    insp = Inspection(
        "postgresql", None, "none", collections=(Collection("shop", "backup.sql", 3, fields=("id_rsa",)),)
    )
    assert assess(insp).severity == "medium"


# --- ransom notes as files and directories --------------------------------------------------------

NOTE = (
    f"All your files have been downloaded and deleted. To recover your data send 0.05 BTC to {P2SH} "
    "and write to recover@tutanota.example. If you do not pay within 72 hours, they will be published."
)


def test_readme_file_with_a_note_is_a_note_and_the_wipe_is_seen() -> None:
    found = assess(bucket({"README.txt": NOTE.encode()}))
    assert found.infected and found.severity == "high"
    (note,) = found.notes
    assert note.where == "object README.txt in bucket backups"
    assert note.btc_addresses == (P2SH,) and note.amount_btc == 0.05
    assert note.emails == ("recover@tutanota.example",)  # the attacker's, not a leak
    assert not found.pii
    assert found.summary.endswith("RANSOM NOTE (1 BTC address, asks 0.05 BTC), DATA WIPED")


@pytest.mark.parametrize(
    "path",
    [
        "HOW_TO_DECRYPT_FILES.html",
        "RESTORE_YOUR_FILES.txt",
        "share/DECRYPT_INSTRUCTIONS.hta",
        "READ_ME_TO_RECOVER",
    ],
)
def test_strong_note_names_are_notes_without_text(path: str) -> None:
    found = assess(bucket({path: None, "data/orders.csv": None}, protocol="smb", name="public"))
    assert found.infected
    assert found.notes[0].where == f"file {path} in share public"


def test_hdfs_wipe_directory() -> None:
    found = assess(bucket({"/NODATA4U_SECUREYOURSHIT/": None}, protocol="hdfs", name="/"))
    assert found.infected
    assert found.notes[0].where == "file /NODATA4U_SECUREYOURSHIT/ in directory /"
    assert "DATA WIPED" in found.summary


@pytest.mark.parametrize(
    ("path", "head"),
    [
        ("README.md", b"# shop\nRun `make` to build. Restore a backup with `make restore`.\n"),
        ("RESTORE.txt", b"To restore the nightly backup, run restore.sh on the replica.\n"),
        ("docs/DECRYPT.md", b"Decrypt the settings with sops; donations to our bitcoin wallet welcome.\n"),
        ("HOW_TO_INSTALL.txt", None),
    ],
)
def test_ordinary_readmes_are_no_notes(path: str, head: bytes | None) -> None:
    assert not assess(bucket({path: head, "src/app.py": None})).infected


# --- the payment demand, in every kind of store ---------------------------------------------------


def test_redis_payment_demand_is_a_note_whatever_the_key() -> None:
    found = assess(redis({"README_PAY": f"send 0.1 BTC to {P2PKH}", "user:1": "alice"}))
    assert found.infected
    (note,) = found.notes
    assert note.where == "key README_PAY in db 0"
    assert note.btc_addresses == (P2PKH,) and note.amount_btc == 0.1


def test_payment_demand_in_a_file_of_any_name() -> None:
    found = assess(bucket({"notes/todo.txt": f"pay 0.2 BTC to {BECH32} now".encode()}))
    assert found.infected and found.notes[0].amount_btc == 0.2


@pytest.mark.parametrize(
    "value",
    [
        f"please send 0.05 bitcoin to {P2PKH} to get your keys back",
        f"pay ₿0.2 -> {BECH32}",
        f"Transfer BTC 1.5 to {P2SH}",
    ],
)
def test_payment_demand_in_any_words_is_a_note(value: str) -> None:
    found = assess(redis({"cache:42": value}))
    assert found.infected and found.notes[0].amount_btc is not None


@pytest.mark.parametrize(
    "keys",
    [
        {"news:1": "Bitcoin rose above 100000 USD; analysts expect to send more BTC to exchanges"},
        {"news:2": "send 0.1 BTC to the address on our page"},  # no address
        {"wallet:1": {"address": P2PKH, "balance": "0.5 BTC", "note": "send funds here"}},  # apart
        {"wallet:2": f"receive address {P2PKH}, send to it"},  # no amount
        {"wallet:3": f"monthly payout 0.5 BTC to {P2PKH}"},  # no demand
        {"wallet:4": f"send 0.1 BTC to {P2PKH[:-1]}t"},  # the address fails its checksum
    ],
)
def test_bitcoin_words_addresses_and_amounts_alone_are_no_note(keys: dict[str, object]) -> None:
    assert not assess(redis(keys)).infected


def test_payment_demand_in_a_large_table_is_data() -> None:
    insp = Inspection(
        "postgresql",
        None,
        "none",
        collections=(Collection("shop", "transfers", 50_000),),
        samples=(Sample("shop", "transfers", ({"memo": f"send 0.1 BTC to {P2PKH}"},)),),
    )
    assert not assess(insp).infected


# --- heads of small files -------------------------------------------------------------------------


def _csv(encoding: str = "utf-8") -> bytes:
    lines = ["姓名,身份证号,手机,备注"] + [f"{n},{i},{p},ok" for n, i, p, _ in PEOPLE]
    return "\n".join(lines).encode(encoding)


def _json() -> bytes:
    return json.dumps(
        {"total": 12, "data": [{"name": n, "id_number": i, "email": e} for n, i, _, e in PEOPLE]}
    ).encode()


def _sql() -> bytes:
    rows = ",".join(f"({k},'{n}','{i}','{p}')" for k, (n, i, p, _) in enumerate(PEOPLE))
    return (
        "-- MySQL dump 10.13\nCREATE TABLE `citizen` (\n  `id` int NOT NULL,\n  `xm` varchar(20),\n"
        "  `sfzh` char(18),\n  `sjhm` varchar(20),\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n"
        f"INSERT INTO `citizen` VALUES {rows};\n"
    ).encode()


@pytest.mark.parametrize(
    ("path", "head", "expected"),
    [
        ("exports/people.csv", _csv(), {"name", "national_id", "phone"}),
        ("exports/people_gbk.csv", _csv("gbk"), {"name", "national_id", "phone"}),
        ("api/list.json", _json(), {"name", "national_id", "email"}),
        ("dump/citizen.sql", _sql(), {"name", "national_id", "phone"}),
        ("notes.txt", "\n".join(f"call {n} on {p}" for n, _, p, _ in PEOPLE).encode(), {"phone"}),
    ],
)
def test_heads_feed_the_personal_data_detector(path: str, head: bytes, expected: set[str]) -> None:
    found = assess(bucket({path: head}))
    assert expected <= found.pii.keys()
    assert found.collection_pii[("", "backups")]
    assert found.severity in ("high", "critical")
    raw = repr(found)
    assert not any(i in raw or p in raw for _, i, p, _ in PEOPLE)  # masked examples only


def test_sql_head_rows_are_named_by_table_and_column() -> None:
    rows = head_rows("citizen.sql", _sql())
    assert len(rows) == len(PEOPLE)
    assert rows[0]["citizen"]["sfzh"] == PEOPLE[0][1]
    copy = b"COPY public.people (name, phone) FROM stdin;\nAnn\t13812345678\n\\N\t\\N\n\\.\nSELECT 1;\n"
    assert head_rows("p.sql", copy) == (
        {"people": {"name": "Ann", "phone": "13812345678"}},
        {"people": {"name": None, "phone": None}},
    )


def test_cut_heads_keep_what_parses() -> None:
    cut_json = b'[{"phone": "13812345678"}, {"phone": "1391234'
    assert head_rows("a.json", cut_json) == ({"phone": "13812345678"},)
    cut_csv = "手机\n13812345678\n1391".encode()
    assert head_rows("a.csv", cut_csv) == ({"手机": "13812345678"},)
    cut_char = "姓名\n张三\n李".encode()[:-1]  # cut inside the last character
    assert head_rows("a.csv", cut_char) == ({"姓名": "张三"},)


@pytest.mark.parametrize(
    ("path", "head"),
    [
        ("a.json", b"[" * 60_000),
        ("a.json", b'{"a":' * 12_000),
        ("a.jsonl", b'{"a":[' * 10_000 + b"\n"),
        ("a.csv", b"\x00\x01\x02" * 1000),
        ("a.csv", b"\xff\xfe\xfd" * 20_000),
        ("a.csv", b'"' * 65_536),
        ("a.sql", b"CREATE TABLE a (" * 4_000),
        ("a.sql", b"INSERT INTO a VALUES ('" + b"\\" * 65_000),
        ("a.sql", b"COPY a (b) FROM stdin;\n" * 2_800),
        ("a.txt", b"\n" * 65_536),
        ("a.png", b"\x89PNG\r\n"),
        ("a.csv.gz", b"\x1f\x8b" + b"x" * 100),
    ],
)
def test_hostile_heads_yield_bounded_rows(path: str, head: bytes) -> None:
    rows = head_rows(path, head)
    assert len(rows) <= MAX_ROWS
    assess(bucket({path: head}))


def test_head_rows_are_capped() -> None:
    wide = (
        ",".join(f"c{i}" for i in range(300)) + "\n" + ",".join("x" * 5 for _ in range(300)) + "\n"
    ).encode()
    (row,) = head_rows("w.csv", wide)
    assert len(row) == MAX_COLUMNS
    long = ("a,b\n" + "y" * 5000 + ",z\n").encode()
    assert head_rows("l.csv", long) == ({"a": "y" * MAX_CELL, "b": "z"},)
    many = ("phone\n" + "13812345678\n" * 5000).encode()
    assert len(head_rows("m.csv", many)) == MAX_ROWS


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.text(max_size=300),
    head=st.binary(max_size=4096) | st.text(max_size=2048).map(str.encode),
    extension=st.sampled_from(["csv", "json", "jsonl", "sql", "txt", "tsv", "", "sql.gz", "bin"]),
)
def test_any_name_and_head_is_read_without_error(path: str, head: bytes, extension: str) -> None:
    name = f"{path}.{extension}" if extension else path
    file_categories(path)
    rows = head_rows(name, head)
    assert len(rows) <= MAX_ROWS
    assert all(len(row) <= MAX_COLUMNS for row in rows)
    found = assess(bucket({name: head, path: None}, protocol="ftp", name="pub"))
    assert found.severity in ("medium", "high", "critical")
