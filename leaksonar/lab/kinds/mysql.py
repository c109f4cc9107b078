"""MariaDB (Debian mariadb-server), protocol "mysql": mariadb-open, mariadb-password, mariadb-ransomed;
mariadb-tls, with TLS offered in the greeting (plaintext still allowed), holding mariadb-open's data.

The seeder gets in as the passwordless root over the lab's unix socket, then leaves root reachable over
TCP with the service's password (or none).
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql

from leaksonar.lab import data, servers
from leaksonar.lab.data import Table
from leaksonar.lab.digest import Hasher, credentials
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, Target, attack, database, ddl
from leaksonar.lab.spec import ServiceSpec, TlsSpec
from leaksonar.lab.tls import unverified_context

SERVICES = (
    ServiceSpec("mariadb-tls", 45, 3306, "mysql", "none", TlsSpec(("db",), "mariadb-open", required=False)),
)

_PACKAGE = "mariadb-server"
_COMMON = ("--innodb-log-file-size=8M", "--innodb-buffer-pool-size=64M")
_SYSTEM = ("information_schema", "mysql", "performance_schema", "sys")


def install_db_argv(data: Path) -> list[str]:
    return [
        servers.program("mariadb-install-db", _PACKAGE),
        "--no-defaults",
        f"--datadir={data}",
        f"--tmpdir={data.parent}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        *_COMMON,
        *(["--user=root"] if servers.is_root() else []),
    ]


def mariadb_argv(ip: str, port: int, data: Path, workdir: Path) -> list[str]:
    return [
        servers.program("mariadbd", _PACKAGE),
        "--no-defaults",
        f"--datadir={data}",
        f"--bind-address={ip}",
        f"--port={port}",
        f"--socket={servers.check_socket_path(workdir / 'mysqld.sock')}",
        f"--pid-file={workdir / 'mariadbd.pid'}",
        f"--tmpdir={workdir}",
        "--skip-name-resolve",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        *_COMMON,
        *(["--user=root"] if servers.is_root() else []),
    ]


def _load(
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
                    cur.execute(ddl(name, table))
                    columns, marks = ", ".join(table.column_names), ", ".join(["%s"] * len(table.columns))
                    cur.executemany(f"INSERT INTO {name} ({columns}) VALUES ({marks})", table.rows)
            for schema in dropped:
                cur.execute(f"DROP DATABASE `{schema}`")
            _accounts(cur, target.password or "")
    finally:
        conn.close()
    return Seeded(
        version, [database(s, {t.name: len(t.rows) for t in tables}) for s, tables in schemas.items()]
    )


def _accounts(cur: Any, password: str) -> None:
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


def _ransomed(target: Target) -> Seeded:
    """The MySQL ransom wave's wipe: the original database dumped and dropped, only `RECOVER_YOUR_DATA`
    left, holding the note."""
    seeded = _load(
        target, {"RECOVER_YOUR_DATA": data.mysql_wave_note()}, {"webshop": data.mysql_wave_dropped()}
    )
    note = attack(
        "wipe with ransom note",
        [{"database": "RECOVER_YOUR_DATA", "collection": "RECOVER_YOUR_DATA"}],
        wiped=True,
        btc_addresses=[data.MYSQL_WAVE_BTC],
        emails=[data.MYSQL_WAVE_EMAIL],
        onion=[data.MYSQL_WAVE_ONION],
        amount_btc=0.03,
    )
    return dataclasses.replace(seeded, attack=note)


def _open(target: Target) -> Seeded:
    return _load(target, {"hospital": data.hospital(), "crm": data.crm()})


_SEEDERS: dict[str, Callable[[Target], Seeded]] = {
    "mariadb-open": _open,
    "mariadb-password": lambda target: _load(target, {"payroll": data.payroll()}),
    "mariadb-ransomed": _ransomed,
    "mariadb-tls": _open,
}


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


class MariaDB:
    protocol = "mysql"
    programs = ("mariadbd",)
    software = "mariadb"
    user = "root"
    stop_signal = signal.SIGTERM
    standin = False

    def start(self, launch: Launch) -> Started:
        launch.workdir.chmod(0o700)  # its socket admits root
        servers.run(install_db_argv(launch.workdir / "data"), launch.workdir / "init.log")
        argv = mariadb_argv(launch.ip, launch.port, launch.workdir / "data", launch.workdir)
        if launch.tls:
            files = launch.tls.write(launch.workdir)
            argv += [f"--ssl-cert={files.cert}", f"--ssl-key={files.key}"]
        return Started(argv, socket=launch.workdir / "mysqld.sock")

    def seed(self, launch: Launch, started: Started) -> Seeded:
        return _SEEDERS[launch.name](Target(launch.ip, launch.port, launch.password, started.socket))

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every non-system schema and table, with CHECKSUM TABLE ... EXTENDED."""
        user, password = credentials(entry, "root")
        conn = pymysql.connect(
            host=entry["ip"],
            port=entry["port"],
            user=user,
            password=password or "",
            charset="utf8mb4",
            connect_timeout=10,
            read_timeout=30,
            ssl=unverified_context() if entry.get("tls") else None,
        )
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT schema_name FROM information_schema.schemata"
                    " WHERE schema_name NOT IN %s ORDER BY 1",
                    (_SYSTEM,),
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


KIND = MariaDB()
