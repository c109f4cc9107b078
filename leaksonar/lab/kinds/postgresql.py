"""PostgreSQL 15 (Debian postgresql-15): postgres-trust, postgres-password, postgres-ransomed; postgres-tls,
with `ssl=on` and only `hostssl` in pg_hba.conf (plaintext connections are refused), holding
postgres-trust's data.

Run as the `postgres` user when the lab is started by root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from leaksonar.lab import data, servers
from leaksonar.lab.data import Table
from leaksonar.lab.digest import Hasher, credentials
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, Target, attack, database, ddl
from leaksonar.lab.servers import Account
from leaksonar.lab.spec import ServiceSpec, TlsSpec
from leaksonar.lab.tls import Leaf

SERVICES = (
    ServiceSpec(
        "postgres-tls",
        43,
        5432,
        "postgresql",
        "none",
        TlsSpec(("pg",), "postgres-trust", required=True, key="rsa"),
    ),
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
_PACKAGE = "postgresql-15"
_ROWS_MD5 = "md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"


def initdb_argv(data: Path, pwfile: Path | None) -> list[str]:
    argv = [servers.program("initdb", _PACKAGE, PG_BIN), "-D", str(data), "-U", "postgres", "--auth=trust"]
    argv += ["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]
    return argv + ([f"--pwfile={pwfile}"] if pwfile else [])


def pg_hba(method: str, tls: bool = False) -> str:
    """Client authentication for every user over TCP from loopback (the server has no unix socket); over
    TLS only if `tls`."""
    return f"{'hostssl' if tls else 'host'} all all 127.0.0.0/8 {method}\n"


def postgres_argv(ip: str, port: int, data: Path, tls: dict[str, str] | None = None) -> list[str]:
    """The server command; `tls` adds settings (ssl, ssl_cert_file, ssl_key_file)."""
    settings = {
        "listen_addresses": ip,
        "port": str(port),
        "unix_socket_directories": "",
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "32MB",
        "max_connections": "40",
        "logging_collector": "off",
        **(tls or {}),
    }
    return [
        servers.program("postgres", _PACKAGE, PG_BIN),
        "-D",
        str(data),
        *(arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")),
    ]


def postgres_account() -> Account | None:
    """`postgres` when running as root, else None (run as the current user)."""
    return servers.system_account("postgres", "PostgreSQL")


def _cluster(workdir: Path, password: str | None, account: Account | None, tls: Leaf | None) -> Path:
    """A fresh cluster owned by `account`; its superuser gets `password`, if any; reached only over TLS
    with `tls`."""
    data, pwfile = servers.owned_dir(workdir / "data", account), workdir / "pgpass"
    if password:
        servers.write_owned(pwfile, password, account)
    try:
        servers.run(initdb_argv(data, pwfile if password else None), workdir / "init.log", account)
    finally:
        pwfile.unlink(missing_ok=True)
    method = "scram-sha-256" if password else "trust"
    servers.write_owned(data / "pg_hba.conf", pg_hba(method, tls is not None), account)
    return data


def _ssl(tls: bool) -> str | None:
    """asyncpg's `ssl` for a server behind TLS ("require": TLS, certificate not checked)."""
    return "require" if tls else None


async def _connect(target: Target, database: str, timeout: float = 15.0) -> asyncpg.Connection:
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
                ssl=_ssl(target.tls),
            )
        except (OSError, asyncpg.CannotConnectNowError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def wait_accepting(ip: str, port: int) -> None:
    """Return once the PostgreSQL on `ip`:`port` accepts sessions (it listens before: "the database system
    is starting up")."""

    async def session() -> None:
        await (await _connect(Target(ip, port), "postgres")).close()

    asyncio.run(session())


async def _fill(target: Target, database: str, tables: list[Table], dropped: list[Table]) -> None:
    """Create and fill `dropped` and `tables`, then drop `dropped` again (what an attacker took away)."""
    conn = await _connect(target, database)
    try:
        for table in (*dropped, *tables):
            await conn.execute(ddl(table.name, table))
            await conn.copy_records_to_table(table.name, records=table.rows, columns=table.column_names)
        for table in dropped:
            await conn.execute(f"DROP TABLE {table.name}")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _load(
    target: Target, databases: dict[str, list[Table]], dropped: dict[str, list[Table]] | None = None
) -> Seeded:
    """Create and fill the databases; `dropped` names tables of them that are filled and dropped again."""
    dropped = dropped or {}
    admin = await _connect(target, "postgres")
    try:
        version = str(await admin.fetchval("SHOW server_version")).split()[0]
        for name in databases:
            await admin.execute(f'CREATE DATABASE "{name}"')
        await asyncio.gather(
            *(_fill(target, name, tables, dropped.get(name, [])) for name, tables in databases.items())
        )
    finally:
        await admin.close()
    return Seeded(
        version,
        [
            database(name, {f"public.{t.name}": len(t.rows) for t in tables})
            for name, tables in databases.items()
        ],
    )


def _ransomed(target: Target) -> Seeded:
    """A note-collection attack as on MongoDB and Elasticsearch: `webapp`'s tables dumped and dropped, a
    `readme` table with the note in their place, one small table left behind."""
    seeded = asyncio.run(
        _load(target, {"webapp": data.note_table_left()}, {"webapp": data.note_table_dropped()})
    )
    note = attack(
        "ransom note",
        [{"database": "webapp", "collection": "public.readme"}],
        wiped=False,
        btc_addresses=[data.NOTE_TABLE_BTC],
        emails=[data.NOTE_TABLE_EMAIL],
        amount_btc=0.04,
    )
    return dataclasses.replace(seeded, attack=note)


def _trust(target: Target) -> Seeded:
    return asyncio.run(_load(target, {"police": data.police(), "shop": data.shop()}))


_SEEDERS: dict[str, Callable[[Target], Seeded]] = {
    "postgres-trust": _trust,
    "postgres-password": lambda t: asyncio.run(_load(t, {"hr": data.hr()})),
    "postgres-ransomed": _ransomed,
    "postgres-tls": _trust,
}


async def _digest(entry: dict[str, Any], h: Hasher) -> None:
    """Every table of every database: row count and md5 of the rows in text order."""
    user, password = credentials(entry, "postgres")

    async def connect(database: str) -> asyncpg.Connection:
        return await asyncpg.connect(
            host=entry["ip"],
            port=entry["port"],
            user=user,
            password=password,
            database=database,
            timeout=10,
            ssl=_ssl(bool(entry.get("tls"))),
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
    for name in databases:
        conn = await connect(name)
        try:
            tables = [
                r[0]
                for r in await conn.fetch(
                    "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
                )
            ]
            h.add("database", name)
            for table in tables:
                row = await conn.fetchrow(f"SELECT count(*), {_ROWS_MD5} FROM {table} t")
                h.add(table, *row)
        finally:
            await conn.close()


class PostgreSQL:
    protocol = "postgresql"
    programs = ("postgres",)
    software = "postgresql"
    user = "postgres"
    stop_signal = signal.SIGINT  # fast shutdown (SIGTERM would wait for every client to leave)
    standin = False

    def start(self, launch: Launch) -> Started:
        account = postgres_account()
        if account:
            lab = launch.workdir.parent
            lab.chmod(lab.stat().st_mode | 0o011)
            servers.check_traversable(lab, account)
        data = _cluster(launch.workdir, launch.password, account, launch.tls)
        tls = None
        if launch.tls:
            files = launch.tls.write(data, account)  # PostgreSQL wants its key private to its user
            tls = {"ssl": "on", "ssl_cert_file": str(files.cert), "ssl_key_file": str(files.key)}
        return Started(postgres_argv(launch.ip, launch.port, data, tls), account=account)

    def seed(self, launch: Launch, started: Started) -> Seeded:
        target = Target(launch.ip, launch.port, launch.password, tls=launch.tls is not None)
        return _SEEDERS[launch.name](target)

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        asyncio.run(_digest(entry, h))


KIND = PostgreSQL()
