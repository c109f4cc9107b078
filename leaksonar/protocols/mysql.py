"""MySQL and MariaDB: recognised from the server's greeting, inspected with aiomysql as root with the
empty password (the documented default of a fresh install), and with no other user or password.
aiomysql talks to the server through a `relay.CappedRelay`, which caps each answer at `Limits.max_bytes`
(a huge result set, endless rows)."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any

import aiomysql
import pymysql

from leaksonar.model import Identity, Inspection, Limits, Software
from leaksonar.protocols.base import AuthRequired, BoundedStream, Endpoint, ProtocolError, timed
from leaksonar.protocols.kit import Learned, count, reason, run_inspection
from leaksonar.protocols.relay import CappedRelay, capped_relay
from leaksonar.protocols.sql import Dialect, Table, cap_tables, finish, measure_tables
from leaksonar.protocols.tls import client_context

NAME = "mysql"
_USER = "root"
_DENIED = frozenset({1044, 1045, 1698})
"""Access denied: to a database, for a user, for a user that must log in another way."""
_GREETING, _ERR = 0x0A, 0xFF
_GREETING_VERSION = re.compile(rb"\d+\.\d+\.\d+[\x21-\x7e]{0,80}")
_ERR_TEXT = re.compile(rb"[^\x00-\x1f\x7f]{2,1023} [^\x00-\x1f\x7f]{1,1023}")
"""A server's error message: printable words (checked for UTF-8 too)."""
_MARIADB = re.compile(r"(?:5\.5\.5-)?(\d+\.\d+\.\d+)-MariaDB", re.IGNORECASE)
_VERSION = re.compile(r"\d+\.\d+\.\d+")

_USER_SCHEMA = "NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"
_SCHEMAS = f"""
SELECT schema_name,
       (SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name {_USER_SCHEMA}),
       (SELECT SUM(data_length + index_length) FROM information_schema.tables
        WHERE table_schema {_USER_SCHEMA})
FROM information_schema.schemata WHERE schema_name {_USER_SCHEMA} ORDER BY schema_name LIMIT %s
"""


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


DIALECT = Dialect(quote=quote_ident, prefix=lambda column, n: f"LEFT({column}, {n})")


def software(server_version: str) -> Software:
    """mariadb or mysql, and the version, from a server version such as 5.5.5-10.11.19-MariaDB-0+deb12u1."""
    if mariadb := _MARIADB.match(server_version):
        return Software("mariadb", mariadb.group(1))
    found = _VERSION.match(server_version)
    return Software("mysql", found.group(0) if found else None)


def _greeting(payload: bytes) -> Identity | None:
    """A protocol 10 initial handshake: version, NUL, connection id, 8 bytes of salt, a zero filler."""
    version, nul, rest = payload[1:].partition(b"\0")
    if not nul or not _GREETING_VERSION.fullmatch(version) or len(rest) < 13 or rest[12] != 0:
        return None
    text = version.decode("ascii")
    return Identity(NAME, software(text), "unknown", text)


def _refusal(payload: bytes) -> Identity | None:
    """An ERR packet sent instead of a greeting (host not allowed, too many connections...): a server
    error code (1000-1999, 3000-4999), maybe a SQLSTATE, and a message."""
    code = int.from_bytes(payload[1:3], "little")
    message = payload[9:] if payload[3:4] == b"#" else payload[3:]
    if not (1000 <= code < 2000 or 3000 <= code < 5000) or not _ERR_TEXT.fullmatch(message):
        return None
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        return None
    name = "mariadb" if "MariaDB" in text else "mysql" if "MySQL" in text else None
    return Identity(NAME, Software(name) if name else None, "unknown", f"{code} {text}"[:200])


_CLIENT_SSL = 0x0800
_SSL_REQUEST_FLAGS = 0x0001 | 0x0200 | _CLIENT_SSL | 0x8000
"""CLIENT_LONG_PASSWORD, CLIENT_PROTOCOL_41, CLIENT_SSL, CLIENT_SECURE_CONNECTION."""


def offers_tls(payload: bytes) -> bool:
    """True if a greeting's capability flags include CLIENT_SSL."""
    _, nul, rest = payload[1:].partition(b"\0")
    return bool(nul) and len(rest) >= 15 and bool(int.from_bytes(rest[13:15], "little") & _CLIENT_SSL)


async def request_tls(stream: BoundedStream) -> bool:
    """Read the greeting of a fresh connection and, if it offers TLS, ask for it (an SSLRequest packet):
    True when the handshake is next."""
    header = await stream.read_exactly(4)
    length = int.from_bytes(header[:3], "little")
    if not 0 < length <= stream.limits.banner_bytes:
        raise ProtocolError(f"a greeting of {length} bytes")
    payload = await stream.read_exactly(length)
    if payload[0] != _GREETING or not offers_tls(payload):
        return False
    request = _SSL_REQUEST_FLAGS.to_bytes(4, "little") + (1 << 24).to_bytes(4, "little") + b"\x2d" + bytes(23)
    await stream.send(len(request).to_bytes(3, "little") + b"\x01" + request)
    return True


class MysqlProtocol:
    name = NAME
    default_ports = (3306,)
    probe = None

    def match(self, reply: bytes) -> Identity | None:
        if len(reply) < 5 or reply[3] != 0:
            return None
        length = int.from_bytes(reply[:3], "little")
        payload = reply[4 : 4 + length]
        if length == 0 or len(payload) < length:
            return None
        if payload[0] == _GREETING:
            return _greeting(payload)
        if payload[0] == _ERR:
            return _refusal(payload)
        return None

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Schemas, tables with row counts and sizes, and a few sampled rows, logging in as root."""
        return await run_inspection(NAME, partial(_inspect, endpoint), identity, limits)


PROTOCOL = MysqlProtocol()


class _MySession:
    """An aiomysql connection (through a capped relay) seen as a `Session`."""

    def __init__(self, conn: aiomysql.Connection, relay: CappedRelay) -> None:
        self.conn, self.relay = conn, relay
        self.server_version: str = conn.get_server_info()

    @property
    def closed(self) -> bool:
        return self.conn.closed

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        try:
            async with self.conn.cursor() as cursor:
                await cursor.execute(sql, args or None)
                return await cursor.fetchall()
        except Exception as exc:
            self.relay.check(exc)
            if isinstance(exc, pymysql.err.InternalError) and len(exc.args) == 1:  # the client's own check
                raise ProtocolError(str(exc.args[0])) from exc
            raise


async def _limit(session: _MySession, learned: Learned) -> None:
    """Make the session read-only and have the server end long statements before the client does."""
    seconds = learned.limits.timeout * 0.9
    server = software(session.server_version)
    statements = ["SET SESSION TRANSACTION READ ONLY"]
    if server.name == "mariadb":
        statements.append(f"SET SESSION max_statement_time = {seconds:.3f}")
    else:
        statements.append(f"SET SESSION max_execution_time = {max(1, int(seconds * 1000))}")
        if (count((server.version or "").split(".")[0]) or 0) >= 8:
            statements.append("SET SESSION information_schema_stats_expiry = 0")  # fresh table_rows
    for sql in statements:
        try:
            await timed(session.fetch(sql), learned.limits)
        except Exception as exc:
            learned.failed(sql, exc)


@asynccontextmanager
async def _session(endpoint: Endpoint, learned: Learned, _database: str = "") -> AsyncIterator[_MySession]:
    """A read-only connection as root with the empty password (tables are named with their schema)."""
    limits = learned.limits
    async with capped_relay(endpoint, limits) as (relay, local):
        try:
            conn = await timed(
                aiomysql.connect(
                    host=local.ip,
                    port=local.port,
                    user=_USER,
                    password="",
                    connect_timeout=limits.timeout,
                    autocommit=True,
                    charset="utf8mb4",
                    program_name="leaksonar",
                    ssl=client_context(endpoint.hostname) if endpoint.starttls else None,
                ),
                limits,
            )
        except pymysql.err.OperationalError as exc:
            relay.check(exc)
            if exc.args and exc.args[0] in _DENIED:
                raise AuthRequired(reason(exc, limits)) from exc
            raise
        except Exception as exc:
            relay.check(exc)
            raise
        try:
            session = _MySession(conn, relay)
            await _limit(session, learned)
            yield session
        finally:
            with suppress(Exception):
                await asyncio.wait_for(conn.ensure_closed(), 1.0)
            conn.close()


async def _catalog(session: _MySession, schemas: Sequence[str], limits: Limits) -> list[Table]:
    """The base tables of `schemas` with estimates, sizes and columns (two catalog queries)."""
    marks = ", ".join(["%s"] * len(schemas))
    tables_sql = f"""
        SELECT table_schema, table_name, table_rows, data_length + index_length
        FROM information_schema.tables
        WHERE table_schema IN ({marks}) AND table_type IN ('BASE TABLE', 'SYSTEM VERSIONED')
        ORDER BY table_schema, table_name LIMIT %s"""
    rows = await timed(session.fetch(tables_sql, *schemas, limits.max_collections + 1), limits)
    if not rows:
        return []
    names = sorted({row[1] for row in rows})
    columns_sql = f"""
        SELECT table_schema, table_name, column_name FROM information_schema.columns
        WHERE table_schema IN ({marks}) AND table_name IN ({", ".join(["%s"] * len(names))})
        ORDER BY table_schema, table_name, ordinal_position"""
    fields: dict[tuple[str, str], list[str]] = defaultdict(list)
    for schema, table, column in await timed(session.fetch(columns_sql, *schemas, *names), limits):
        fields[schema, table].append(column)
    return [
        Table(
            database=schema,
            name=table,
            ref=f"{quote_ident(schema)}.{quote_ident(table)}",
            estimate=count(estimate),
            size_bytes=count(size),
            fields=tuple(fields[schema, table]),
        )
        for schema, table, estimate, size in rows
    ]


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    learned.auth = "unknown"  # known once a session opens
    connect = partial(_session, endpoint, learned)
    limits = learned.limits
    tables: list[Table] = []
    async with connect() as session:
        learned.auth = "none"
        server_version = session.server_version
        learned.software = software(server_version)
        learned.details["server_version"] = server_version
        try:
            schemas = await timed(session.fetch(_SCHEMAS, limits.max_databases), limits)
        except Exception as exc:
            learned.failed("Listing the schemas", exc)
            schemas = ()
        names = [row[0] for row in schemas]
        learned.databases = count(schemas[0][1]) if schemas else 0
        learned.size_bytes = (count(schemas[0][2]) or 0) if schemas else 0
        learned.capped(len(names), learned.databases or 0, "schemas (max_databases)")
        if names:
            try:
                tables = await _catalog(session, names, limits)
            except Exception as exc:
                learned.failed("Listing the tables", exc)
    learned.rows = 0
    await measure_tables(cap_tables(tables, limits.max_collections, learned), connect, DIALECT, learned)
    finish(learned)
