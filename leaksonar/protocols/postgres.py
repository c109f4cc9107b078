"""PostgreSQL: recognised from its answer to a StartupMessage, inspected with asyncpg without a password.

Every connection first sends a raw StartupMessage and reads the server's first answer: asyncpg is used
only when that answer is AuthenticationOk, so a password request is never answered (not even with an
empty password). asyncpg talks to the server through a `relay.CappedRelay`, which caps each answer at
`Limits.max_bytes` (a huge DataRow, endless rows).
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import replace
from functools import partial
from typing import Any

import asyncpg

from leaksonar.model import Auth, ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import (
    AuthRequired,
    BoundedStream,
    Endpoint,
    ProtocolError,
    ReplyTooLarge,
    timed,
)
from leaksonar.protocols.kit import Learned, count, run_inspection
from leaksonar.protocols.relay import CappedRelay, capped_relay
from leaksonar.protocols.sql import (
    CONCURRENCY,
    Dialect,
    Table,
    cap_tables,
    finish,
    measure_session,
    placeholders,
)
from leaksonar.protocols.tls import client_context

NAME = "postgresql"
_USER = "postgres"
_MAINTENANCE_DATABASES = ("postgres", "template1")
_PROTOCOL_3_0 = 3 << 16
_AUTH_OK = b"R\x00\x00\x00\x08\x00\x00\x00\x00"
_TERMINATE = b"X\x00\x00\x00\x04"
_SSL_REQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
"""Length 8, code 80877103: "may we speak TLS?" (answered S or N, before any StartupMessage)."""
_VERSION = re.compile(r"\d+(?:\.\d+)*")
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")
_MECHANISM = re.compile(rb"[A-Z0-9_-]{1,64}")
_ERROR_FIELDS = frozenset(b"SVCMDHPpqWstcdnFLR")
_PASSWORD_REQUESTS = {2: "KerberosV5", 3: "CleartextPassword", 5: "MD5Password", 7: "GSS", 9: "SSPI"}
_SASL = 10

_DATABASES = """
SELECT datname::text, count(*) OVER (),
       (sum(CASE WHEN has_database_privilege(oid, 'CONNECT') THEN pg_database_size(oid) END) OVER ())::bigint
FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname LIMIT $1
"""
_FIELDS = """ARRAY(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)"""
_USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'"
_TABLES = f"""
WITH RECURSIVE tree(root, rel) AS (
    SELECT oid, oid FROM pg_class WHERE relkind = 'p'
    UNION ALL
    SELECT tree.root, i.inhrelid FROM tree JOIN pg_inherits i ON i.inhparent = tree.rel
), partitioned AS (
    SELECT tree.root, sum(pg_total_relation_size(k.oid)) AS size,
           CASE WHEN bool_or(k.relkind = 'r' AND k.reltuples < 0) THEN -1
                ELSE coalesce(sum(k.reltuples) FILTER (WHERE k.relkind = 'r'), 0) END AS tuples
    FROM tree JOIN pg_class k ON k.oid = tree.rel GROUP BY tree.root
)
SELECT n.nspname::text, c.relname::text, coalesce(p.tuples, c.reltuples)::float8,
       coalesce(p.size, pg_total_relation_size(c.oid))::bigint, {_FIELDS}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN partitioned p ON p.root = c.oid
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {_USER_SCHEMAS}
ORDER BY 1, 2 LIMIT $1
"""
_TABLES_BEFORE_10 = f"""
SELECT n.nspname::text, c.relname::text, c.reltuples::float8, pg_total_relation_size(c.oid)::bigint, {_FIELDS}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND {_USER_SCHEMAS}
ORDER BY 1, 2 LIMIT $1
"""
"""Tables and partitioned tables (a partition is measured as part of its parent); materialized views
(copies of other tables) and foreign tables (data held elsewhere) are left out."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


DIALECT = Dialect(quote=quote_ident, prefix=lambda column, n: f"left({column}::text, {n})")


def startup(database: str) -> bytes:
    """A protocol 3.0 StartupMessage for user postgres."""
    params = {"user": _USER, "database": database, "application_name": "leaksonar"}
    pairs = b"".join(f"{key}\0{value}\0".encode() for key, value in params.items())
    body = struct.pack("!I", _PROTOCOL_3_0) + pairs + b"\0"
    return struct.pack("!I", len(body) + 4) + body


def _messages(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The complete backend messages (type, body) at the start of `data`."""
    offset = 0
    while offset + 5 <= len(data):
        length = int.from_bytes(data[offset + 1 : offset + 5], "big")
        end = offset + 1 + length
        if length < 4 or end > len(data):
            return
        yield data[offset : offset + 1], data[offset + 5 : end]
        offset = end


def _authentication(body: bytes) -> tuple[Auth, str] | None:
    """(auth, banner) of an Authentication message body, None if it is not a valid one."""
    if len(body) < 4:
        return None
    code, rest = int.from_bytes(body[:4], "big"), body[4:]
    if code == 0 and not rest:
        return "none", "AuthenticationOk"
    if code in _PASSWORD_REQUESTS and len(rest) == (4 if code == 5 else 0):
        return "required", f"Authentication{_PASSWORD_REQUESTS[code]}"
    if code == _SASL and rest.endswith(b"\0\0"):
        mechanisms = rest[:-2].split(b"\0")
        if all(_MECHANISM.fullmatch(m) for m in mechanisms):
            return "required", "AuthenticationSASL " + " ".join(m.decode() for m in mechanisms)
    return None


def _error_fields(body: bytes) -> dict[str, str] | None:
    """The fields of an ErrorResponse body, None unless it is well formed with a SQLSTATE and message."""
    if not body.endswith(b"\0\0"):
        return None
    fields: dict[str, str] = {}
    for item in body[:-2].split(b"\0"):
        if not item or item[0] not in _ERROR_FIELDS:
            return None
        fields[chr(item[0])] = item[1:].decode("utf-8", "replace")
    if not _SQLSTATE.fullmatch(fields.get("C", "")) or "M" not in fields:
        return None
    return fields


def _parameter(reply: bytes, name: str) -> str | None:
    """The value of a ParameterStatus message in `reply`."""
    for kind, body in _messages(reply):
        key, _, value = body.partition(b"\0")
        if kind == b"S" and key.decode("latin-1") == name:
            return value.rstrip(b"\0").decode("utf-8", "replace")
    return None


def _version(text: str | None) -> str | None:
    found = _VERSION.match(text or "")
    return found.group(0) if found else None


class PostgresProtocol:
    name = NAME
    default_ports = (5432,)
    probe = startup("postgres")

    def match(self, reply: bytes) -> Identity | None:
        first = next(_messages(reply), None)
        if first is None:
            return None
        kind, body = first
        if kind == b"R" and (found := _authentication(body)):
            auth, banner = found
            version = _version(_parameter(reply, "server_version")) if auth == "none" else None
            return Identity(NAME, Software(NAME, version), auth, banner)
        if kind == b"E" and (fields := _error_fields(body)):
            auth: Auth = "required" if fields["C"].startswith("28") else "unknown"
            return Identity(NAME, Software(NAME), auth, f"{fields['C']} {fields['M']}"[:200])
        return None

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Databases, tables with row counts and sizes, and a few sampled rows, connecting as postgres."""
        return await run_inspection(NAME, partial(_inspect, endpoint), identity, limits, Software(NAME))


PROTOCOL = PostgresProtocol()


class _PgSession:
    """An asyncpg connection (through a capped relay) seen as a `Session`."""

    def __init__(self, conn: asyncpg.Connection, relay: CappedRelay) -> None:
        self.conn, self.relay = conn, relay

    @property
    def closed(self) -> bool:
        return self.conn.is_closed()

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        try:
            return await self.conn.fetch(sql, *args)
        except Exception as exc:
            self.relay.check(exc)
            raise


async def request_tls(stream: BoundedStream) -> bool:
    """Ask for TLS on a fresh connection (SSLRequest); True when the server agreed (S): the handshake is
    next. A server that answers anything but S or N is not PostgreSQL."""
    await stream.send(_SSL_REQUEST)
    answer = await stream.read_exactly(1)
    if answer not in (b"S", b"N"):
        raise ProtocolError(f"SSLRequest answered {answer!r}")
    return answer == b"S"


async def _open(endpoint: Endpoint, limits: Limits) -> BoundedStream:
    """A connection to the server, TLS negotiated first when `endpoint.starttls`."""
    stream = await BoundedStream.open(endpoint, limits)
    if endpoint.starttls:
        try:
            if not await request_tls(stream):
                raise ProtocolError("the server no longer offers TLS")
            await stream.start_tls(endpoint.hostname)
        except BaseException:
            await stream.close()
            raise
    return stream


async def _first_message(endpoint: Endpoint, database: str, limits: Limits) -> bytes:
    """The server's first answer to a StartupMessage; the connection is then closed."""
    async with await _open(endpoint, limits) as stream:
        await stream.send(startup(database))
        header = await stream.read_exactly(5)
        length = int.from_bytes(header[1:], "big")
        if not 4 <= length <= limits.banner_bytes:
            raise ReplyTooLarge(f"the first message announces {length} bytes")
        message = header + await stream.read_exactly(length - 4)
        if message == _AUTH_OK:
            await stream.send(_TERMINATE)
        return message


def _server_settings(limits: Limits) -> dict[str, str]:
    milliseconds = max(1, int(limits.timeout * 900))  # the server gives up (lock waits too) before we do
    return {
        "application_name": "leaksonar",
        "default_transaction_read_only": "on",
        "statement_timeout": str(milliseconds),
    }


@asynccontextmanager
async def _session(endpoint: Endpoint, limits: Limits, database: str) -> AsyncIterator[_PgSession]:
    """A read-only connection to `database`, opened only if the server asks for no password."""
    identity = PROTOCOL.match(await timed(_first_message(endpoint, database, limits), limits))
    if identity is None:
        raise ConnectionError("the server's answer is not PostgreSQL")
    if identity.auth == "required":
        raise AuthRequired(identity.banner)
    if identity.auth != "none":
        raise ConnectionError(identity.banner)
    async with capped_relay(endpoint, limits) as (relay, local):
        try:
            conn = await timed(
                _connect(
                    replace(local, starttls=endpoint.starttls, hostname=endpoint.hostname), database, limits
                ),
                limits,
            )
        except Exception as exc:
            relay.check(exc)
            raise
        try:
            yield _PgSession(conn, relay)
        finally:
            with suppress(Exception):  # on failure close() has already aborted the connection
                await conn.close(timeout=1.0)


def _connect(local: Endpoint, database: str, limits: Limits) -> Awaitable[asyncpg.Connection]:
    """asyncpg's connection to the relay in front of the server (`local`: the relay's address, with the
    service's negotiated TLS and name; TLS from the first byte is the relay's own)."""
    return asyncpg.connect(
        host=local.ip,
        port=local.port,
        user=_USER,
        password="",  # never None: asyncpg would then read PGPASSWORD or ~/.pgpass
        database=database,
        ssl=client_context(local.hostname) if local.starttls else False,
        timeout=limits.timeout,
        statement_cache_size=0,
        server_settings=_server_settings(limits),
    )


async def _databases(endpoint: Endpoint, learned: Learned) -> tuple[str, int, Sequence[Sequence[Any]]]:
    """(server_version, major version, rows of _DATABASES) from the first maintenance database found."""
    limits = learned.limits
    for database in _MAINTENANCE_DATABASES:
        try:
            async with _session(endpoint, limits, database) as session:
                learned.auth = "none"
                conn = session.conn
                try:
                    rows = await timed(session.fetch(_DATABASES, limits.max_databases), limits)
                except Exception as exc:
                    learned.failed("Listing the databases", exc)
                    rows = []
                return conn.get_settings().server_version, conn.get_server_version().major, rows
        except asyncpg.InvalidCatalogNameError:
            continue
    raise ConnectionError("neither database postgres nor template1 exists")


def _table(database: str, row: Sequence[Any]) -> Table:
    schema, name, tuples, size, fields = row
    return Table(
        database=database,
        name=f"{schema}.{name}",
        ref=f"{quote_ident(schema)}.{quote_ident(name)}",
        estimate=count(tuples),
        size_bytes=size,
        fields=tuple(fields),
    )


async def _open_catalog(
    stack: AsyncExitStack, endpoint: Endpoint, database: str, major: int, learned: Learned
) -> tuple[_PgSession | None, list[Table]]:
    """A session on `database` (closed with `stack`) and its user tables, from one catalog query."""
    sql, limits = _TABLES if major >= 10 else _TABLES_BEFORE_10, learned.limits
    try:
        session = await stack.enter_async_context(_session(endpoint, limits, database))
        rows = await timed(session.fetch(sql, limits.max_collections + 1), limits)
    except AuthRequired:
        message = f"Database {database} asks for a password; it was not inspected."
        learned.add(ErrorKind.AUTH_REQUIRED, message)
        return None, []
    except Exception as exc:
        learned.failed(f"Listing the tables of database {database}", exc)
        return None, []
    return session, [_table(database, row) for row in rows]


async def _inspect_databases(endpoint: Endpoint, names: Sequence[str], major: int, learned: Learned) -> None:
    """Catalog and measure each database on one connection, a few databases at a time; the table cap
    is filled in database order."""
    room = learned.limits.max_collections
    for start in range(0, len(names), CONCURRENCY):
        if room == 0:
            left = f"{len(names) - start} databases were not looked into (max_collections)."
            learned.left_out(left)
            break
        async with AsyncExitStack() as stack:
            chunk = names[start : start + CONCURRENCY]
            opened = await asyncio.gather(
                *(_open_catalog(stack, endpoint, name, major, learned) for name in chunk)
            )
            work = []
            for session, tables in opened:
                mine = cap_tables(tables, room, learned)
                room -= len(mine)
                if session is not None and mine:
                    work.append(measure_session(session, mine, placeholders(learned, mine), DIALECT, learned))
            await asyncio.gather(*work)


async def _hba_refusal(endpoint: Endpoint, limits: Limits) -> str:
    """How pg_hba.conf refused a StartupMessage for database postgres (SQLSTATE 28000): "" when it did
    not, or the exchange failed."""
    try:
        message = await timed(_first_message(endpoint, "postgres", limits), limits)
    except Exception:
        return ""
    identity = PROTOCOL.match(message)
    return identity.banner if identity is not None and identity.banner.startswith("28000 ") else ""


async def _insists_on_tls(endpoint: Endpoint, limits: Limits) -> bool:
    """True if pg_hba.conf refuses a plaintext StartupMessage for want of encryption (hostssl) but lets
    the same one through over TLS: an address with no entry at all is refused "..., no encryption" in
    plaintext too, and that server refuses everyone from here rather than insisting on TLS."""
    if "no encryption" not in await _hba_refusal(replace(endpoint, starttls=False), limits):
        return False
    return not await _hba_refusal(endpoint, limits)


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    learned.auth = "unknown"  # known once a session opens
    if endpoint.starttls:
        learned.details["tls_required"] = await _insists_on_tls(endpoint, learned.limits)
    server_version, major, rows = await _databases(endpoint, learned)
    learned.software = Software(NAME, _version(server_version))
    learned.details["server_version"] = server_version
    names = [row[0] for row in rows]
    learned.databases, learned.size_bytes = (rows[0][1], rows[0][2]) if rows else (0, 0)
    learned.capped(len(names), learned.databases, "databases (max_databases)")
    learned.rows = 0
    await _inspect_databases(endpoint, names, major, learned)
    finish(learned)
