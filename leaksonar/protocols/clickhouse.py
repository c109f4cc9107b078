"""ClickHouse: the HTTP interface (8123) and the native port (9000), recognised on any port; inspected
read-only over HTTP GET.

Recognition (the reply to the plain `GET /` probe):
- HTTP interface: any reply carrying an `X-ClickHouse-*` header; or, for servers that send none on `/`
  (18.x: `HTTP/1.0 200 OK`, `Content-Type: text/html; charset=UTF-8`, body exactly `Ok.\\n`, no
  `Server` header), that exact static answer. Inspection then confirms with `SELECT version()`.
- Native port: its HTTP refusal `Port 9000 is for clickhouse-client program.`, or a native packet: a
  server Hello (`\\x00` + "ClickHouse") or an exception (`\\x02`, int32 code, "DB::...Exception").

Every query is a GET (which ClickHouse itself runs read-only) with `readonly=1` (dropped where the
server refuses to change it, as 18.x does: GET already implies readonly=2), `max_result_bytes`,
`result_overflow_mode=throw` and `max_execution_time`. Inspection reads `SELECT version()`,
`system.databases`, `system.tables`, `system.parts` (rows and bytes of the active parts of MergeTree
tables; `count()` for Log/Memory tables), `system.columns` and `SELECT * ... LIMIT n FORMAT
JSONEachRow` per table. Auth is required when the default user has a password (HTTP 401/403, codes
192-194 and 516, "Authentication failed", "password is incorrect").

On the native port a hand-written ClientHello (user `default`, empty password) yields the version or
the authentication error; the data is listed through the HTTP interface only.

Naming: database = the ClickHouse database, collection = the table; `system` (and the
information_schema views) are left out.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

from leaksonar.model import Auth, Collection, ErrorKind, Identity, Inspection, Limits, Sample, Software
from leaksonar.protocols.base import AuthRequired, BoundedStream, CommandRefused, Endpoint, ProtocolError
from leaksonar.protocols.http import PROTOCOL as HTTP
from leaksonar.protocols.httpclient import HttpClient, Response, bounded_client, get_bounded, http_parts
from leaksonar.protocols.kit import SERVER_ERRORS, Learned, bounded, count, run_inspection

_HEADER = re.compile(rb"^x-clickhouse-[\w-]+:", re.I | re.M)
_SERVER_HEADER = re.compile(rb"^server:", re.I | re.M)
_STATIC_OK = re.compile(rb"\AHTTP/1\.[01] 200 OK\r\n")
_NATIVE_REFUSAL = re.compile(rb"Port \d{1,5} is for clickhouse-client program")
_NATIVE_HELLO = re.compile(rb"\A\x00\x0aClickHouse", re.S)
_NATIVE_EXCEPTION = re.compile(rb"\A\x02.{4}[\x08-\x7f]DB::\w{0,40}Exception", re.S)
_AUTH_CODES = ("Code: 192,", "Code: 193,", "Code: 194,", "Code: 516,")
_AUTH_TEXT = ("Authentication failed", "password is incorrect", "Password required")
_READONLY_REFUSED = "Code: 164,"
_SYSTEM = ("system", "information_schema", "INFORMATION_SCHEMA")
_COUNTED_ENGINES = ("Log", "TinyLog", "StripeLog", "Memory")
"""Engines without parts whose rows are counted with count()."""
_CONCURRENCY = 4
_MAX_STRING = 64 * 1024
_CLIENT_REVISION = 54401
"""The native protocol revision the ClientHello announces (with time zone, display name, patch)."""

Query = Callable[[str], Awaitable[list[dict[str, Any]]]]


class NativePort(Exception):
    """The HTTP request reached the native port (it answered with its HTTP refusal)."""


# --- HTTP queries ---------------------------------------------------------------------------------


def quote_name(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _error_text(body: bytes) -> str:
    return body[:300].decode("utf-8", "replace").strip().splitlines()[0] if body.strip() else ""


def rows_of(response: Response) -> list[dict[str, Any]]:
    """The JSONEachRow rows of a successful answer; AuthRequired / CommandRefused otherwise."""
    text = response.body.decode("utf-8", "replace")
    if response.status in (401, 403) or text.startswith(_AUTH_CODES) or any(t in text for t in _AUTH_TEXT):
        raise AuthRequired(_error_text(response.body))
    if response.status == 400 and _NATIVE_REFUSAL.search(response.body):
        raise NativePort()
    if response.status != 200:
        raise CommandRefused(_error_text(response.body) or f"HTTP {response.status}")
    try:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (ValueError, RecursionError):
        raise ProtocolError("the answer was not JSONEachRow") from None
    if not all(isinstance(row, dict) for row in rows):
        raise ProtocolError("the answer was not JSONEachRow")
    return rows


@dataclass(slots=True)
class _Http:
    """Runs SELECTs through GET with the bounding settings; remembers whether `readonly=1` is refused."""

    base: str
    limits: Limits
    client: HttpClient
    readonly: bool = True

    def url(self, sql: str) -> str:
        settings: dict[str, Any] = {
            "query": f"{sql} FORMAT JSONEachRow",
            "max_result_bytes": self.limits.max_bytes,
            "result_overflow_mode": "throw",
            "max_execution_time": max(1, math.ceil(self.limits.timeout)),
            "output_format_json_quote_64bit_integers": 0,
        }
        if self.readonly:
            settings["readonly"] = 1
        return f"{self.base}/?{urlencode(settings)}"

    async def query(self, sql: str) -> list[dict[str, Any]]:
        response = await get_bounded(self.url(sql), self.limits, self.client)
        if self.readonly and response.status != 200 and response.body.startswith(_READONLY_REFUSED.encode()):
            self.readonly = False  # GET already runs read-only (readonly=2) on this server
            response = await get_bounded(self.url(sql), self.limits, self.client)
        return rows_of(response)


# --- tables ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Table:
    database: str
    name: str
    engine: str
    rows: int | None = None
    size_bytes: int | None = None
    fields: tuple[str, ...] = ()

    @property
    def stored(self) -> bool:
        """Holds its own data (sampling a view or a remote table would run elsewhere)."""
        return self.engine.endswith("MergeTree") or self.engine in _COUNTED_ENGINES


def _not_system(column: str) -> str:
    return f"{column} NOT IN ({', '.join(repr(name) for name in _SYSTEM)})"


async def _tables(query: Query, limits: Limits) -> tuple[list[str], list[Table], int]:
    """Non-system databases, their first tables (with parts counts and columns), and the table total."""
    databases = [
        str(r["name"]) for r in await query(f"SELECT name FROM system.databases WHERE {_not_system('name')}")
    ]
    where = _not_system("database")
    listed = await query(
        f"SELECT database, name, engine FROM system.tables WHERE {where} ORDER BY database, name"
    )
    tables = {
        (str(r["database"]), str(r["name"])): Table(str(r["database"]), str(r["name"]), str(r["engine"]))
        for r in listed
    }
    parts = await query(
        "SELECT database, table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes"
        f" FROM system.parts WHERE active AND {where} GROUP BY database, table"
    )
    for row in parts:
        if (table := tables.get((str(row["database"]), str(row["table"])))) is not None:
            table.rows, table.size_bytes = count(row["rows"]), count(row["bytes"])
    shown = list(tables.values())[: limits.max_collections]
    wanted = {(t.database, t.name): t for t in shown}
    columns: dict[tuple[str, str], list[str]] = {}
    for row in await query(f"SELECT database, table, name FROM system.columns WHERE {where}"):
        key = (str(row["database"]), str(row["table"]))
        if key in wanted:
            columns.setdefault(key, []).append(str(row["name"]))
    for key, table in wanted.items():
        table.fields = tuple(columns.get(key, ()))
    return databases, shown, len(tables)


def sample_rows(rows: list[dict[str, Any]], limits: Limits) -> tuple[dict[str, Any], ...]:
    return tuple(bounded(row, limits) for row in rows[: limits.sample_rows])


async def _read_table(query: Query, table: Table, learned: Learned) -> None:
    """Count a part-less table, sample a stored one; failures become errors."""
    limits = learned.limits
    name = f"{quote_name(table.database)}.{quote_name(table.name)}"
    documents: tuple[dict[str, Any], ...] = ()
    try:
        if table.engine in _COUNTED_ENGINES:
            (row,) = await query(f"SELECT count() AS rows FROM {name}")
            table.rows = count(row.get("rows"))
        if table.stored:
            documents = sample_rows(await query(f"SELECT * FROM {name} LIMIT {limits.sample_rows}"), limits)
    except (*SERVER_ERRORS, ValueError) as exc:
        learned.failed(f"Sampling {table.database}.{table.name}", exc)
    if documents:
        learned.samples.append(Sample(table.database, table.name, documents))


async def _inspect_http(http: _Http, learned: Learned) -> None:
    limits = http.limits
    rows = await http.query("SELECT version() AS version")
    if len(rows) != 1:
        raise ProtocolError(f"SELECT version() answered {len(rows)} rows")
    row = rows[0]
    learned.auth = "none"
    learned.software = Software("clickhouse", str(row.get("version"))[:40])
    if not http.readonly:
        learned.details["readonly"] = "implied by GET (the server refuses readonly=1)"
    try:
        databases, tables, total = await _tables(http.query, limits)
    except KeyError as exc:
        raise ProtocolError(f"a system table was listed without its column {exc}") from None
    learned.databases = len(databases)
    learned.capped(len(tables), total, "tables")
    gate = asyncio.Semaphore(_CONCURRENCY)

    async def read(table: Table) -> None:
        async with gate:
            await _read_table(http.query, table, learned)

    await asyncio.gather(*(read(t) for t in tables))
    learned.samples.sort(key=lambda s: (s.database, s.collection))
    learned.collections = [Collection(t.database, t.name, t.rows, t.size_bytes, t.fields) for t in tables]
    learned.rows = sum(t.rows or 0 for t in tables)
    learned.size_bytes = sum(t.size_bytes or 0 for t in tables)


# --- the native port ------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def string(value: str) -> bytes:
    raw = value.encode()
    return varint(len(raw)) + raw


CLIENT_HELLO = (
    varint(0) + string("leaksonar") + varint(1) + varint(1) + varint(_CLIENT_REVISION)
    + string("") + string("default") + string("")
)  # fmt: skip
"""Hello from client "leaksonar" 1.1 as user `default` with the empty password, no database."""


async def read_varint(stream: BoundedStream) -> int:
    value = 0
    for shift in range(0, 63, 7):
        byte = (await stream.read_exactly(1))[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
    raise ProtocolError("a varint longer than 9 bytes")


async def read_string(stream: BoundedStream) -> str:
    size = await read_varint(stream)
    if size > _MAX_STRING:
        raise ProtocolError(f"a string of {size} bytes in a hello")
    return (await stream.read_exactly(size)).decode("utf-8", "replace")


async def native_hello(endpoint: Endpoint, limits: Limits) -> tuple[Software | None, Auth, str]:
    """Software, auth and a message from the server's answer to CLIENT_HELLO."""
    async with await BoundedStream.open(endpoint, limits) as stream:
        await stream.send(CLIENT_HELLO)
        packet = await read_varint(stream)
        if packet == 2:  # Exception: int32 code, name, message, stack trace, has_nested
            code = int.from_bytes(await stream.read_exactly(4), "little", signed=True)
            await read_string(stream)
            message = (await read_string(stream))[:300]
            auth: Auth = "required" if f"Code: {code}," in _AUTH_CODES else "unknown"
            return Software("clickhouse"), auth, f"Code {code}: {message}"
        if packet != 0:
            raise ProtocolError(f"unexpected native packet {packet}")
        name = await read_string(stream)
        major, minor, revision = [await read_varint(stream) for _ in range(3)]
        if revision >= 54058:
            await read_string(stream)  # time zone
        if revision >= 54372:
            await read_string(stream)  # display name
        patch = await read_varint(stream) if revision >= 54401 else revision
        if name != "ClickHouse":
            raise ProtocolError(f"the native hello names {name[:40]!r}")
        return Software("clickhouse", f"{major}.{minor}.{patch}"), "none", ""


async def _inspect_native(endpoint: Endpoint, learned: Learned) -> None:
    learned.details["interface"] = "native"
    learned.software, learned.auth, message = await native_hello(endpoint, learned.limits)
    if learned.auth == "required":
        learned.details["refusal"] = message
    elif message:
        learned.add(ErrorKind.COMMAND_REFUSED, f"The native hello was refused: {message}.")


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    async with bounded_client(endpoint, learned.limits) as client:
        http = _Http(endpoint.url, learned.limits, client)
        try:
            await _inspect_http(http, learned)
        except NativePort:
            await _inspect_native(endpoint, learned)


class ClickhouseProtocol:
    name = "clickhouse"
    default_ports = (8123, 9000)
    probe = HTTP.probe

    def match(self, reply: bytes) -> Identity | None:
        """The HTTP interface's answer, the native port's HTTP refusal, or a native packet."""
        if _NATIVE_HELLO.match(reply) or _NATIVE_EXCEPTION.match(reply):
            return Identity(self.name, Software("clickhouse"), "unknown", "native protocol")
        if (parts := http_parts(reply)) is None:
            return None
        _, head, body, banner = parts
        if refusal := _NATIVE_REFUSAL.search(body):
            return Identity(self.name, Software("clickhouse"), "unknown", refusal.group(0).decode())
        static_ok = (
            _STATIC_OK.match(head + b"\r\n")
            and body == b"Ok.\n"
            and b"\r\ncontent-type: text/html; charset=utf-8\r\n" in head.lower() + b"\r\n"
            and not _SERVER_HEADER.search(head)
        )
        if _HEADER.search(head) or static_ok:
            return Identity(self.name, Software("clickhouse"), "unknown", banner)
        return None

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Version, databases, tables with parts counts and columns, a bounded sample each; GETs only."""
        return await run_inspection(self.name, partial(_inspect, endpoint), identity, limits)


PROTOCOL = ClickhouseProtocol()
