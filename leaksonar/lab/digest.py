"""A content digest of everything a lab service holds, read with the real client libraries.

Two equal digests, taken before and after a scan, prove the scan changed nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import asyncpg
import pymysql
import redis
from pymemcache.client.base import Client as Memcache

_ROWS_MD5 = "md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
_MYSQL_SYSTEM = ("information_schema", "mysql", "performance_schema", "sys")


class _Hasher:
    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add(self, *parts: object) -> None:
        """Feed values unambiguously (each length-prefixed)."""
        for part in parts:
            raw = part if isinstance(part, bytes) else repr(part).encode()
            self._h.update(len(raw).to_bytes(8, "big") + raw)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def _credentials(entry: dict[str, Any], user: str) -> tuple[str, str | None]:
    creds = entry.get("credentials") or {}
    return creds.get("user") or user, creds.get("password")


def _redis(entry: dict[str, Any], h: _Hasher) -> None:
    """Every key of every database: name, type, TTL and DUMP of the value."""
    user, password = _credentials(entry, "default")
    options = {
        "host": entry["ip"],
        "port": entry["port"],
        "username": user if password else None,
        "password": password,
        "socket_timeout": 10,
    }
    with redis.Redis(**options) as first:
        dbs = sorted(int(name[2:]) for name in first.info("keyspace"))
    for db in dbs:
        with redis.Redis(db=db, **options) as client:
            keys = sorted(client.scan_iter(count=1000))
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.type(key).ttl(key).dump(key)
            replies = pipe.execute()
        h.add("db", db)
        for i, key in enumerate(keys):
            h.add(key, *replies[3 * i : 3 * i + 3])


async def _postgres(entry: dict[str, Any], h: _Hasher) -> None:
    """Every table of every database: row count and md5 of the rows in text order."""
    user, password = _credentials(entry, "postgres")

    async def connect(database: str) -> asyncpg.Connection:
        return await asyncpg.connect(
            host=entry["ip"], port=entry["port"], user=user, password=password, database=database, timeout=10
        )

    admin = await connect("postgres")
    try:
        databases = [
            r[0]
            for r in await admin.fetch(
                "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
            )
        ]
    finally:
        await admin.close()
    for database in databases:
        conn = await connect(database)
        try:
            tables = [
                r[0]
                for r in await conn.fetch(
                    "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
                )
            ]
            h.add("database", database)
            for table in tables:
                row = await conn.fetchrow(f"SELECT count(*), {_ROWS_MD5} FROM {table} t")
                h.add(table, *row)
        finally:
            await conn.close()


def _mysql(entry: dict[str, Any], h: _Hasher) -> None:
    """Every non-system schema and table, with CHECKSUM TABLE ... EXTENDED."""
    user, password = _credentials(entry, "root")
    conn = pymysql.connect(
        host=entry["ip"],
        port=entry["port"],
        user=user,
        password=password or "",
        charset="utf8mb4",
        connect_timeout=10,
        read_timeout=30,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name NOT IN %s ORDER BY 1",
                (_MYSQL_SYSTEM,),
            )
            for (schema,) in cur.fetchall():
                h.add("schema", schema)
                cur.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
                    (schema,),
                )
                for (table,) in cur.fetchall():
                    cur.execute(f"CHECKSUM TABLE {_quote(schema)}.{_quote(table)} EXTENDED")
                    h.add(table, cur.fetchone()[1])
    finally:
        conn.close()


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _memcached(entry: dict[str, Any], h: _Hasher) -> None:
    """The item count and every key listed in the manifest with its value."""
    client = Memcache((entry["ip"], entry["port"]), connect_timeout=5, timeout=10)
    try:
        keys = sorted(entry["keys"])
        values = client.get_many(keys)
        h.add("items", client.stats()[b"curr_items"])
    finally:
        client.close()
    for key in keys:
        h.add(key, values.get(key))


_DIGESTERS: dict[str, Callable[[dict[str, Any], _Hasher], None]] = {
    "redis": _redis,
    "postgresql": lambda entry, h: asyncio.run(_postgres(entry, h)),
    "mysql": _mysql,
    "memcached": _memcached,
}


def lab_digest(manifest_service: dict[str, Any]) -> str:
    """SHA-256 over all data of one lab service (a manifest entry); uses its credentials if it has any."""
    h = _Hasher()
    _DIGESTERS[manifest_service["protocol"]](manifest_service, h)
    return h.hexdigest()
