"""Load the synthetic data into running lab servers (bulk: pipelines, COPY, multi-row INSERT).

Each loader returns what it loaded, in the manifest's naming: the server's version and the databases
with their collections and row counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pymysql
import redis
from pymemcache.client.base import Client as Memcache

from leaksonar.lab import data
from leaksonar.lab.data import RedisData, Table
from leaksonar.lab.spec import LabError


@dataclass(frozen=True, slots=True)
class Target:
    """Where a freshly started server listens, and how the loader gets in."""

    ip: str
    port: int
    password: str | None = None
    socket: Path | None = None
    """MariaDB: the unix socket (inside the lab dir) used as the initial passwordless root."""


@dataclass(frozen=True, slots=True)
class Seeded:
    version: str
    databases: list[dict[str, Any]]
    keys: list[str] | None = None
    attack: dict[str, Any] | None = None
    """Attacked services: what the attacker left, in the manifest's form (see `_attack`)."""


def _database(name: str, collections: dict[str, int]) -> dict[str, Any]:
    return {"name": name, "collections": [{"name": c, "rows": n} for c, n in collections.items()]}


def _attack(
    kind: str,
    places: Iterable[dict[str, str]],
    *,
    wiped: bool,
    btc_addresses: Iterable[str] = (),
    emails: Iterable[str] = (),
    onion: Iterable[str] = (),
    amount_btc: float | None = None,
) -> dict[str, Any]:
    """The manifest's `attack`: the kind of attack, whether every collection was replaced by a note
    (`wiped`), where the attacker's notes or planted keys are, and what the notes ask and name."""
    return {
        "infected": True,
        "kind": kind,
        "wiped": wiped,
        "places": list(places),
        "btc_addresses": list(btc_addresses),
        "emails": list(emails),
        "onion": list(onion),
        "amount_btc": amount_btc,
    }


def _load_redis(target: Target, content: RedisData) -> Seeded:
    dbs = content.key_counts()
    for db in dbs:
        client = redis.Redis(
            host=target.ip, port=target.port, db=db, password=target.password, socket_timeout=10
        )
        with client:
            pipe = client.pipeline(transaction=False)
            for key, mapping in content.hashes.get(db, {}).items():
                pipe.hset(key, mapping=mapping)
            for key, value in content.strings.get(db, {}).items():
                pipe.set(key, value)
            for key, items in content.lists.get(db, {}).items():
                pipe.rpush(key, *items)
            pipe.execute()
            version = str(client.info("server")["redis_version"])
    return Seeded(version, [_database(str(db), {f"db{db}": n}) for db, n in dbs.items()])


def redis_open(target: Target) -> Seeded:
    return _load_redis(target, data.redis_open())


def redis_auth(target: Target) -> Seeded:
    return _load_redis(target, data.redis_auth())


def redis_attacked(target: Target) -> Seeded:
    """The cron-job attack (keys backup1..4) and the SSH key plant (crackit), among ordinary keys."""
    seeded = _load_redis(target, data.redis_attacked())
    planted = (*data.CRON_KEYS, *data.SSH_KEY_PLANT)
    places = [{"database": "0", "collection": "db0", "key": key} for key in planted]
    return dataclasses.replace(seeded, attack=_attack("cron-job", places, wiped=False))


def memcached(target: Target) -> Seeded:
    items = data.memcached_items()
    client = Memcache((target.ip, target.port), connect_timeout=5, timeout=10)
    try:
        failed = client.set_many(items, noreply=False)
        version = client.version().decode()
    finally:
        client.close()
    if failed:
        raise LabError(f"memcached refused {len(failed)} items")
    return Seeded(version, [_database("", {"items": len(items)})], keys=list(items))


async def _pg_connect(target: Target, database: str, timeout: float = 15.0) -> asyncpg.Connection:
    """Connect as `postgres`, retrying while the server is still starting up."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncpg.connect(
                host=target.ip,
                port=target.port,
                user="postgres",
                password=target.password,
                database=database,
                timeout=5,
            )
        except (OSError, asyncpg.CannotConnectNowError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def _ddl(name: str, table: Table) -> str:
    return f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in table.columns)})"


async def _pg_fill(target: Target, database: str, tables: list[Table], dropped: list[Table]) -> None:
    """Create and fill `dropped` and `tables`, then drop `dropped` again (what an attacker took away)."""
    conn = await _pg_connect(target, database)
    try:
        for table in (*dropped, *tables):
            await conn.execute(_ddl(table.name, table))
            await conn.copy_records_to_table(table.name, records=table.rows, columns=table.column_names)
        for table in dropped:
            await conn.execute(f"DROP TABLE {table.name}")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _pg_load(
    target: Target, databases: dict[str, list[Table]], dropped: dict[str, list[Table]] | None = None
) -> Seeded:
    """Create and fill the databases; `dropped` names tables of them that are filled and dropped again."""
    dropped = dropped or {}
    admin = await _pg_connect(target, "postgres")
    try:
        version = str(await admin.fetchval("SHOW server_version")).split()[0]
        for name in databases:
            await admin.execute(f'CREATE DATABASE "{name}"')
        await asyncio.gather(
            *(_pg_fill(target, name, tables, dropped.get(name, [])) for name, tables in databases.items())
        )
    finally:
        await admin.close()
    return Seeded(
        version,
        [
            _database(name, {f"public.{t.name}": len(t.rows) for t in tables})
            for name, tables in databases.items()
        ],
    )


def postgres_trust(target: Target) -> Seeded:
    return asyncio.run(_pg_load(target, {"police": data.police(), "shop": data.shop()}))


def postgres_password(target: Target) -> Seeded:
    return asyncio.run(_pg_load(target, {"hr": data.hr()}))


def postgres_ransomed(target: Target) -> Seeded:
    """A note-collection attack as on MongoDB and Elasticsearch: `webapp`'s tables dumped and dropped, a
    `readme` table with the note in their place, one small table left behind."""
    seeded = asyncio.run(
        _pg_load(target, {"webapp": data.note_table_left()}, {"webapp": data.note_table_dropped()})
    )
    attack = _attack(
        "ransom note",
        [{"database": "webapp", "collection": "public.readme"}],
        wiped=False,
        btc_addresses=[data.NOTE_TABLE_BTC],
        emails=[data.NOTE_TABLE_EMAIL],
        amount_btc=0.04,
    )
    return dataclasses.replace(seeded, attack=attack)


def _mariadb_load(
    target: Target, schemas: dict[str, list[Table]], dropped: dict[str, list[Table]] | None = None
) -> Seeded:
    """Fill the schemas (and fill, then drop, the `dropped` ones: an attacker's wipe), then leave root
    reachable over TCP: with `target.password`, or with none."""
    dropped = dropped or {}
    assert target.socket is not None
    conn = pymysql.connect(
        unix_socket=str(target.socket), user="root", password="", charset="utf8mb4", autocommit=True
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = str(cur.fetchone()[0]).split("-")[0]
            for schema, tables in {**dropped, **schemas}.items():
                cur.execute(f"CREATE DATABASE `{schema}` CHARACTER SET utf8mb4")
                for table in tables:
                    name = f"`{schema}`.`{table.name}`"
                    cur.execute(_ddl(name, table))
                    columns, marks = ", ".join(table.column_names), ", ".join(["%s"] * len(table.columns))
                    cur.executemany(f"INSERT INTO {name} ({columns}) VALUES ({marks})", table.rows)
            for schema in dropped:
                cur.execute(f"DROP DATABASE `{schema}`")
            _mariadb_accounts(cur, target.password or "")
    finally:
        conn.close()
    return Seeded(
        version, [_database(s, {t.name: len(t.rows) for t in tables}) for s, tables in schemas.items()]
    )


def _mariadb_accounts(cur: Any, password: str) -> None:
    """No anonymous users; root only from the lab socket and from anywhere ('%'), with `password` ('' =
    empty, mysql_native_password). mariadb-install-db's extra passwordless roots (127.0.0.1, ::1, the
    host name) would shadow root@'%', so they go."""
    cur.execute(
        "SELECT user, host FROM mysql.user WHERE user = '' OR (user = 'root' AND host <> 'localhost')"
    )
    for user, host in cur.fetchall():
        cur.execute("DROP USER %s@%s", (user, host))
    cur.execute(
        "CREATE USER 'root'@'%%' IDENTIFIED VIA mysql_native_password USING PASSWORD(%s)", (password,)
    )
    cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION")
    if password:
        cur.execute(
            "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(%s)",
            (password,),
        )


def mariadb_open(target: Target) -> Seeded:
    return _mariadb_load(target, {"hospital": data.hospital(), "crm": data.crm()})


def mariadb_password(target: Target) -> Seeded:
    return _mariadb_load(target, {"payroll": data.payroll()})


def mariadb_ransomed(target: Target) -> Seeded:
    """The MySQL ransom wave's wipe: the original database dumped and dropped, only `RECOVER_YOUR_DATA`
    left, holding the note."""
    seeded = _mariadb_load(
        target, {"RECOVER_YOUR_DATA": data.mysql_wave_note()}, {"webshop": data.mysql_wave_dropped()}
    )
    attack = _attack(
        "wipe with ransom note",
        [{"database": "RECOVER_YOUR_DATA", "collection": "RECOVER_YOUR_DATA"}],
        wiped=True,
        btc_addresses=[data.MYSQL_WAVE_BTC],
        emails=[data.MYSQL_WAVE_EMAIL],
        onion=[data.MYSQL_WAVE_ONION],
        amount_btc=0.03,
    )
    return dataclasses.replace(seeded, attack=attack)
