"""A Cassandra STAND-IN for the lab (no Cassandra package exists here): a small asyncio server speaking
the CQL native protocol v4 (native_protocol_v4.spec), read-only, holding its data in memory.

It is not Cassandra. It answers OPTIONS, STARTUP (READY, or AUTHENTICATE with
org.apache.cassandra.auth.PasswordAuthenticator when a password is set), AUTH_RESPONSE (SASL PLAIN,
user `cassandra`) and QUERY for statements of the form `SELECT <*|count(*)|columns> FROM ks.table
[LIMIT n]` (parsed loosely; paging honoured), over keyspace `crm` and the system tables a client
reads (system.local, system_schema.keyspaces/tables/columns). Every other statement is refused with
Unauthorized, as a read-only role would be. Bytes that are not a v4 frame get Cassandra's own answer:
a protocol error "Invalid or unsupported protocol version", then the connection is closed.

Run: `python leaksonar/lab/standins/cassandra.py --host IP --port PORT` (password, if any, in
$LEAKSONAR_STANDIN_PASSWORD).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leaksonar.lab.data import SEED, Synth
from leaksonar.protocols import cassandra as cql

RELEASE_VERSION = "4.1.5"
USER = "cassandra"
AUTHENTICATOR = "org.apache.cassandra.auth.PasswordAuthenticator"
PASSWORD_ENV = "LEAKSONAR_STANDIN_PASSWORD"
CUSTOMERS, TICKETS = 600, 1200
_AUTH_RESPONSE, _AUTH_SUCCESS, _REGISTER = 0x0F, 0x10, 0x0B
_BAD_CREDENTIALS, _SYNTAX, _UNAUTHORIZED, _INVALID = 0x0100, 0x2000, 0x2100, 0x2200
_MAX_BODY = 1 << 20
_AGGREGATION_WARNING = "Aggregation query used without partition key"
_IDENT = r'(?:"(?:[^"]|"")+"|\w+)'
_SELECT = re.compile(
    rf"\s*SELECT\s+(?P<what>.+?)\s+FROM\s+(?:(?P<ks>{_IDENT})\.)?(?P<table>{_IDENT})"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*;?\s*",
    re.IGNORECASE | re.DOTALL,
)
_COUNT = re.compile(r"count\(\s*(?:\*|1)\s*\)", re.IGNORECASE)

VARCHAR, INT, BIGINT, UUID, TIMESTAMP, BOOLEAN, DOUBLE = 0x0D, 0x09, 0x02, 0x0C, 0x0B, 0x04, 0x07
_TYPE_NAMES = {
    VARCHAR: "text", INT: "int", BIGINT: "bigint", UUID: "uuid", TIMESTAMP: "timestamp", BOOLEAN: "boolean",
    DOUBLE: "double",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Table:
    columns: tuple[tuple[str, int], ...]
    """(name, CQL type id); the first column is the partition key."""
    rows: tuple[tuple[Any, ...], ...]


def _encode(kind: int, value: Any) -> bytes | None:
    if value is None:
        return None
    encoders: dict[int, Callable[[Any], bytes]] = {
        VARCHAR: lambda v: str(v).encode(),
        INT: lambda v: struct.pack(">i", v),
        BIGINT: lambda v: struct.pack(">q", v),
        UUID: lambda v: v.bytes,
        TIMESTAMP: lambda v: struct.pack(">q", int(v.timestamp() * 1000)),
        BOOLEAN: lambda v: b"\x01" if v else b"\x00",
        DOUBLE: lambda v: struct.pack(">d", v),
    }
    return encoders[kind](value)


def columns(spec: str) -> tuple[tuple[str, int], ...]:
    """Columns from "name:type name:type ..." (CQL type names)."""
    ids = {name: kind for kind, name in _TYPE_NAMES.items()}
    return tuple((name, ids[kind]) for name, kind in (item.split(":") for item in spec.split()))


# --- data -----------------------------------------------------------------------------------------


def crm() -> dict[str, Table]:
    """Keyspace `crm`: customers (name, phone, email ...) and their support tickets; deterministic."""
    s = Synth(SEED + 21)
    ids = [uuid.UUID(int=s.rnd.getrandbits(128), version=4) for _ in range(CUSTOMERS)]
    customers = tuple(
        (cid, p.name, p.phone, p.email, p.address, s.moment(2024))
        for cid, p in zip(ids, s.people(CUSTOMERS, english_share=0.3), strict=True)
    )
    subjects = ("退款申请", "账户被锁定", "发票问题", "物流延迟", "password reset", "billing question")
    tickets = tuple(
        (
            uuid.UUID(int=s.rnd.getrandbits(128), version=4),
            s.rnd.choice(ids),
            s.rnd.choice(subjects),
            s.rnd.randrange(1, 5),
            s.rnd.random() < 0.3,
            round(s.rnd.uniform(0.1, 72.0), 2),
            s.moment(2025),
        )
        for _ in range(TICKETS)
    )
    return {
        "customers": Table(
            columns("id:uuid name:text phone:text email:text address:text created:timestamp"),
            customers,
        ),
        "tickets": Table(
            columns(
                "id:uuid customer_id:uuid subject:text priority:int open:boolean hours:double"
                " opened:timestamp"
            ),
            tickets,
        ),
    }


def catalog(user: dict[str, dict[str, Table]]) -> dict[tuple[str, str], Table]:
    """The user keyspaces plus the system tables describing them."""
    tables = {(ks, name): t for ks, named in user.items() for name, t in named.items()}
    local = Table(
        (("key", VARCHAR), ("release_version", VARCHAR), ("cluster_name", VARCHAR), ("cql_version", VARCHAR)),
        (("local", RELEASE_VERSION, "leaksonar lab (stand-in)", "3.4.6"),),
    )
    system = {("system", "local"): local}
    keyspaces = sorted({ks for ks, _ in (*tables, *system)} | {"system_schema"})
    schema_names = ("keyspaces", "tables", "columns")
    listed = sorted([*tables, *system, *(("system_schema", n) for n in schema_names)])
    columns_of = {**tables, **system}
    column_rows = tuple(
        (ks, name, column, "partition_key" if i == 0 else "regular", -1 if i else 0, _TYPE_NAMES[kind])
        for ks, name in listed
        if (ks, name) in columns_of
        for i, (column, kind) in enumerate(columns_of[(ks, name)].columns)
    )
    schema = {
        ("system_schema", "keyspaces"): Table((("keyspace_name", VARCHAR),), tuple((k,) for k in keyspaces)),
        ("system_schema", "tables"): Table(
            (("keyspace_name", VARCHAR), ("table_name", VARCHAR)), tuple(listed)
        ),
        ("system_schema", "columns"): Table(
            columns("keyspace_name:text table_name:text column_name:text kind:text position:int type:text"),
            column_rows,
        ),
    }
    return {**tables, **system, **schema}


# --- messages -------------------------------------------------------------------------------------


def error_body(code: int, message: str) -> bytes:
    return struct.pack(">i", code) + cql.string(message)


def rows_body(
    keyspace: str,
    table: str,
    columns: Sequence[tuple[str, int]],
    rows: Sequence[Sequence[Any]],
    state: bytes | None,
) -> bytes:
    """A RESULT of kind Rows with a global table spec (and a paging state if more pages follow)."""
    flags = cql.GLOBAL_TABLES_SPEC | (cql.HAS_MORE_PAGES if state is not None else 0)
    head = struct.pack(">iii", cql.ROWS, flags, len(columns))
    if state is not None:
        head += struct.pack(">i", len(state)) + state
    head += cql.string(keyspace) + cql.string(table)
    head += b"".join(cql.string(name) + struct.pack(">H", kind) for name, kind in columns)
    cells = bytearray(struct.pack(">i", len(rows)))
    for row in rows:
        for (_, kind), value in zip(columns, row, strict=True):
            raw = _encode(kind, value)
            cells += struct.pack(">i", -1) if raw is None else struct.pack(">i", len(raw)) + raw
    return head + bytes(cells)


def _ident(raw: str) -> str:
    return raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower()


@dataclass(frozen=True, slots=True)
class Answer:
    opcode: int
    body: bytes
    warnings: tuple[str, ...] = ()


def _parse_query(body: bytes) -> tuple[str, int | None, int]:
    """(statement, page size, offset to start from) of a QUERY body."""
    reader = cql.Reader(body)
    statement = reader.take(reader.int()).decode("utf-8", "replace")
    reader.short()
    flags = reader.take(1)[0]
    if flags & 0x01:
        raise ValueError("bound values are not supported by the stand-in")
    page_size = reader.int() if flags & 0x04 else None
    state = reader.bytes() if flags & 0x08 else None
    return statement, page_size, int.from_bytes(state, "big") if state else 0


class Standin:
    """The tables and the QUERY logic, shared by every connection."""

    def __init__(self, password: str | None) -> None:
        self.password = password
        self.tables = catalog({"crm": crm()})

    def query(self, body: bytes) -> Answer:
        try:
            statement, page_size, offset = _parse_query(body)
        except (ValueError, cql.ProtocolError) as exc:
            return Answer(cql.ERROR, error_body(cql.PROTOCOL_ERROR, str(exc)))
        found = _SELECT.fullmatch(statement)
        if found is None:
            verb = (statement.split() or ["(empty)"])[0].upper()
            if verb == "SELECT":
                return Answer(
                    cql.ERROR, error_body(_SYNTAX, f"line 1:0 no viable alternative at {statement!r}")
                )
            return Answer(
                cql.ERROR, error_body(_UNAUTHORIZED, f"this Cassandra stand-in is read-only: {verb}")
            )
        if found["ks"] is None:
            return Answer(cql.ERROR, error_body(_INVALID, "No keyspace has been specified."))
        keyspace, name = _ident(found["ks"]), _ident(found["table"])
        table = self.tables.get((keyspace, name))
        if table is None:
            return Answer(cql.ERROR, error_body(_INVALID, f"table {name} does not exist"))
        return self._select(keyspace, name, table, found["what"].strip(), found["limit"], page_size, offset)

    def _select(
        self,
        keyspace: str,
        name: str,
        table: Table,
        what: str,
        limit: str | None,
        page: int | None,
        offset: int,
    ) -> Answer:
        if _COUNT.fullmatch(what):
            body = rows_body(keyspace, name, (("count", BIGINT),), ((len(table.rows),),), None)
            return Answer(cql.RESULT, body, (_AGGREGATION_WARNING,))
        indexes = _projection(table, what)
        if isinstance(indexes, str):
            return Answer(cql.ERROR, error_body(_INVALID, f"Undefined column name {indexes}"))
        rows = table.rows[: int(limit)] if limit is not None else table.rows
        end = len(rows) if not page or page <= 0 else min(len(rows), offset + page)
        state = end.to_bytes(8, "big") if end < len(rows) else None
        columns = [table.columns[i] for i in indexes]
        picked = [[row[i] for i in indexes] for row in rows[offset:end]]
        return Answer(cql.RESULT, rows_body(keyspace, name, columns, picked, state))


def _projection(table: Table, what: str) -> list[int] | str:
    """Column indexes for `*` or a column list; the first unknown column's name if there is one."""
    names = [c for c, _ in table.columns]
    if what == "*":
        return list(range(len(names)))
    wanted = [_ident(part.strip()) for part in what.split(",")]
    for column in wanted:
        if column not in names:
            return column
    return [names.index(c) for c in wanted]


# --- connections ----------------------------------------------------------------------------------


def response(answer: Answer, stream: int) -> bytes:
    body = answer.body
    flags = 0
    if answer.warnings:
        flags |= cql.WARNING
        body = struct.pack(">H", len(answer.warnings)) + b"".join(map(cql.string, answer.warnings)) + body
    return cql.HEADER.pack(0x84, flags, stream, answer.opcode, len(body)) + body


def unsupported_version(version: int) -> bytes:
    message = f"Invalid or unsupported protocol version ({version}); supported versions are (4/v4)"
    return response(Answer(cql.ERROR, error_body(cql.PROTOCOL_ERROR, message)), 0)


class Connection:
    def __init__(self, standin: Standin) -> None:
        self.standin = standin
        self.state = "new"  # new -> (authenticating ->) ready

    def answer(self, opcode: int, body: bytes) -> Answer:
        if opcode == cql.OPTIONS:
            options = {"CQL_VERSION": ["3.4.6"], "PROTOCOL_VERSIONS": ["4/v4"], "COMPRESSION": []}
            payload = struct.pack(">H", len(options)) + b"".join(
                cql.string(k) + struct.pack(">H", len(v)) + b"".join(map(cql.string, v))
                for k, v in options.items()
            )
            return Answer(cql.SUPPORTED, payload)
        if opcode == cql.STARTUP and self.state == "new":
            return self._startup(body)
        if opcode == _AUTH_RESPONSE and self.state == "authenticating":
            return self._authenticate(body)
        if self.state != "ready":
            return Answer(cql.ERROR, error_body(cql.PROTOCOL_ERROR, f"Unexpected message {opcode:#04x}"))
        if opcode == cql.QUERY:
            return self.standin.query(body)
        if opcode == _REGISTER:
            return Answer(cql.READY, b"")
        return Answer(
            cql.ERROR, error_body(cql.PROTOCOL_ERROR, f"opcode {opcode:#04x} is not supported here")
        )

    def _startup(self, body: bytes) -> Answer:
        try:
            reader = cql.Reader(body)
            options = {reader.string(): reader.string() for _ in range(reader.short())}
        except cql.ProtocolError:
            return Answer(cql.ERROR, error_body(cql.PROTOCOL_ERROR, "malformed STARTUP"))
        if "CQL_VERSION" not in options:
            return Answer(cql.ERROR, error_body(cql.PROTOCOL_ERROR, "Missing value CQL_VERSION in STARTUP"))
        if self.standin.password is None:
            self.state = "ready"
            return Answer(cql.READY, b"")
        self.state = "authenticating"
        return Answer(cql.AUTHENTICATE, cql.string(AUTHENTICATOR))

    def _authenticate(self, body: bytes) -> Answer:
        try:
            token = cql.Reader(body).bytes() or b""
        except cql.ProtocolError:
            token = b""
        _, user, password = [*token.split(b"\0"), b"", b""][:3]
        if (
            user.decode(errors="replace") == USER
            and password.decode(errors="replace") == self.standin.password
        ):
            self.state = "ready"
            return Answer(_AUTH_SUCCESS, struct.pack(">i", -1))
        message = f"Provided username {user.decode(errors='replace')} and/or password are incorrect"
        return Answer(cql.ERROR, error_body(_BAD_CREDENTIALS, message))


async def handle(standin: Standin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    connection = Connection(standin)
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while first := await reader.read(1):
            if first[0] != 0x04:
                writer.write(unsupported_version(first[0] & 0x7F))
                break
            _, flags, stream, opcode, length = cql.HEADER.unpack(first + await reader.readexactly(8))
            if not 0 <= length <= _MAX_BODY or flags & cql.COMPRESSED:
                writer.write(response(Answer(cql.ERROR, error_body(cql.PROTOCOL_ERROR, "bad frame")), stream))
                break
            writer.write(response(connection.answer(opcode, await reader.readexactly(length)), stream))
            await writer.drain()
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


async def serve(host: str, port: int, password: str | None) -> asyncio.Server:
    standin = Standin(password)
    return await asyncio.start_server(lambda r, w: handle(standin, r, w), host, port)


async def _main(host: str, port: int, password: str | None) -> None:
    server = await serve(host, port, password)
    print(f"Cassandra stand-in (CQL v4) listening on {host}:{port} at {datetime.now():%H:%M:%S}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="A read-only Cassandra (CQL v4) stand-in for the lab.")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=9042)
    args = parser.parse_args()
    asyncio.run(_main(args.host, args.port, os.environ.get(PASSWORD_ENV) or None))


if __name__ == "__main__":
    main()
