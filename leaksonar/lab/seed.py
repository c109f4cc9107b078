"""Load the synthetic data into running lab servers (bulk: pipelines, COPY, multi-row INSERT).

Each loader returns what it loaded, in the manifest's naming: the server's version and the databases
with their collections and row counts.
"""

from __future__ import annotations

import asyncio
import time
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


def _database(name: str, collections: dict[str, int]) -> dict[str, Any]:
    return {"name": name, "collections": [{"name": c, "rows": n} for c, n in collections.items()]}


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


async def _pg_fill(target: Target, database: str, tables: list[Table]) -> None:
    conn = await _pg_connect(target, database)
    try:
        for table in tables:
            await conn.execute(_ddl(table.name, table))
            await conn.copy_records_to_table(table.name, records=table.rows, columns=table.column_names)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _pg_load(target: Target, databases: dict[str, list[Table]]) -> Seeded:
    admin = await _pg_connect(target, "postgres")
    try:
        version = str(await admin.fetchval("SHOW server_version")).split()[0]
        for name in databases:
            await admin.execute(f'CREATE DATABASE "{name}"')
        await asyncio.gather(*(_pg_fill(target, name, tables) for name, tables in databases.items()))
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


def _mariadb_load(target: Target, schemas: dict[str, list[Table]]) -> Seeded:
    """Fill the schemas, then leave root reachable over TCP: with `target.password`, or with none."""
    assert target.socket is not None
    conn = pymysql.connect(
        unix_socket=str(target.socket), user="root", password="", charset="utf8mb4", autocommit=True
    )
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = str(cur.fetchone()[0]).split("-")[0]
            for schema, tables in schemas.items():
                cur.execute(f"CREATE DATABASE `{schema}` CHARACTER SET utf8mb4")
                for table in tables:
                    name = f"`{schema}`.`{table.name}`"
                    cur.execute(_ddl(name, table))
                    columns, marks = ", ".join(table.column_names), ", ".join(["%s"] * len(table.columns))
                    cur.executemany(f"INSERT INTO {name} ({columns}) VALUES ({marks})", table.rows)
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
