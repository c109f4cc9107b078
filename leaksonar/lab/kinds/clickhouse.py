"""ClickHouse (Debian clickhouse-server 18.16): clickhouse-open.

The server runs on a minimal config.xml + users.xml written into the service's workdir (every path
inside it, no interserver port; user `default` with the empty password, or `Launch.password`). The
address and ports are given on the command line (`-- --listen_host=IP ...`, config overrides), so that
`lab down` finds the service's address in /proc/PID/cmdline: one real listen_host (the service's
address), the HTTP interface on the service's port, the native protocol on 9000 (`Started.ports`;
`native_port`).

Seed: database `analytics` with `visits` (5,000 page views: IP address, user agent, URL, referrer,
user ID, time) and `users` (1,000: name, phone, email, city), both MergeTree, loaded through the HTTP
interface (INSERT ... FORMAT JSONEachRow). The manifest names things as the scanner does: database =
the ClickHouse database, collection = the table.
"""

from __future__ import annotations

import json
import signal
from typing import Any
from xml.sax.saxutils import escape

import httpx

from leaksonar.lab import data, servers
from leaksonar.lab.digest import Hasher, credentials
from leaksonar.lab.kinds.base import Launch, Started
from leaksonar.lab.seed import Seeded, database
from leaksonar.lab.spec import LabError, ServiceSpec

SERVICES = (ServiceSpec("clickhouse-open", 27, 8123, "clickhouse", "none"),)
NATIVE_PORT = 9000


def native_port(http_port: int) -> int:
    """9000 beside the default HTTP port 8123; the next port beside any other (a moved server)."""
    return NATIVE_PORT if http_port == 8123 else http_port + 1


_USERS, _VISITS = 1000, 5000
_PAGES = ("/", "/search", "/product/{}", "/cart", "/checkout", "/account", "/help", "/login")

_CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <max_connections>64</max_connections>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>{dir}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mlock_executable>false</mlock_executable>
</yandex>
"""
_USERS_XML = """<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>1000000000</max_memory_usage></default></profiles>
    <users>
        <default>
            <password>{password}</password>
            <networks><ip>::/0</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
"""
_TABLES = {
    "users": "id UInt32, name String, phone String, email String, city String, created DateTime",
    "visits": (
        "id UInt32, time DateTime, ip String, user_agent String, url String, referrer String, user_id UInt32"
    ),
}

Rows = dict[str, list[dict[str, Any]]]
"""table -> rows."""


def analytics() -> Rows:
    """The `analytics` database's rows (deterministic)."""
    s = data.Synth(data.SEED + 70)
    users = [
        {
            "id": i,
            "name": p.name,
            "phone": p.phone,
            "email": p.email,
            "city": s.zh.city(),
            "created": s.moment(2024).strftime("%Y-%m-%d %H:%M:%S"),
        }
        for i, p in enumerate(s.people(_USERS, english_share=0.3), 1)
    ]
    visits = [
        {
            "id": i,
            "time": s.moment(2025).strftime("%Y-%m-%d %H:%M:%S"),
            "ip": s.en.ipv4_public(),
            "user_agent": s.en.user_agent(),
            "url": s.rnd.choice(_PAGES).format(s.rnd.randrange(1, 500)),
            "referrer": s.rnd.choice(("", "https://www.baidu.com/", "https://www.bing.com/")),
            "user_id": s.rnd.randrange(0, _USERS + 1),
        }
        for i in range(1, _VISITS + 1)
    ]
    return {"users": users, "visits": visits}


def _client(ip: str, port: int, password: str | None) -> httpx.Client:
    auth = ("default", password) if password else None
    return httpx.Client(base_url=f"http://{ip}:{port}", timeout=60, trust_env=False, auth=auth)


def _post(client: httpx.Client, sql: str, body: bytes = b"") -> str:
    answer = client.post("/", params={"query": sql}, content=body)
    if answer.status_code != 200:
        raise LabError(f"clickhouse refused {sql[:60]!r}: {answer.text[:200]}")
    return answer.text


def _select(client: httpx.Client, sql: str) -> list[dict[str, Any]]:
    answer = client.get("/", params={"query": f"{sql} FORMAT JSONEachRow"})
    answer.raise_for_status()
    return [json.loads(line) for line in answer.text.splitlines() if line]


def _quote(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class ClickHouse:
    protocol = "clickhouse"
    programs = ("clickhouse-server",)
    software = "clickhouse"
    user = "default"
    stop_signal = signal.SIGTERM
    standin = False

    def start(self, launch: Launch) -> Started:
        program = servers.program("clickhouse-server", "Debian clickhouse-server")
        config = launch.workdir / "config.xml"
        config.write_text(_CONFIG.format(dir=escape(str(launch.workdir))))
        users = launch.workdir / "users.xml"
        users.write_text(_USERS_XML.format(password=escape(launch.password or "")))
        users.chmod(0o600)
        native = native_port(launch.port)
        overrides = [f"--listen_host={launch.ip}", f"--http_port={launch.port}", f"--tcp_port={native}"]
        return Started([program, f"--config-file={config}", "--", *overrides], ports=(native,))

    def seed(self, launch: Launch, started: Started) -> Seeded:
        rows = analytics()
        with _client(launch.ip, launch.port, launch.password) as client:
            _post(client, "CREATE DATABASE analytics")
            for table, columns in _TABLES.items():
                _post(client, f"CREATE TABLE analytics.{table} ({columns}) ENGINE = MergeTree ORDER BY id")
                body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows[table])
                _post(client, f"INSERT INTO analytics.{table} FORMAT JSONEachRow", body.encode())
            version = _post(client, "SELECT version()").strip()
        return Seeded(version, [database("analytics", {t: len(r) for t, r in sorted(rows.items())})])

    def digest(self, entry: dict[str, Any], h: Hasher) -> None:
        """Every non-system database and table: engine, columns, row count and a hash of all rows."""
        _, password = credentials(entry, "default")
        with _client(entry["ip"], entry["port"], password) as client:
            tables = _select(
                client,
                "SELECT database, name, engine FROM system.tables WHERE database != 'system'"
                " ORDER BY database, name",
            )
            listing = _select(client, "SELECT database, table, name FROM system.columns")
            h.add("databases", *(r["name"] for r in _select(client, "SELECT name FROM system.databases")))
            for table in tables:
                key = (table["database"], table["name"])
                columns = [r["name"] for r in listing if (r["database"], r["table"]) == key]
                name = f"{_quote(table['database'])}.{_quote(table['name'])}"
                hashed = ", ".join(_quote(c) for c in columns)
                (row,) = _select(client, f"SELECT count() AS n, sum(cityHash64({hashed})) AS h FROM {name}")
                h.add(*key, table["engine"], *columns, row["n"], row["h"])


KIND = ClickHouse()
