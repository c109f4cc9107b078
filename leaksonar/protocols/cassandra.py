"""Cassandra: the CQL native protocol (v4, v3 for older servers), hand-written and bounded.

Identification: an OPTIONS frame, answered by SUPPORTED (or by an ERROR frame: Cassandra answers any
bytes that are not a CQL frame, such as an HTTP request, with "Invalid or unsupported protocol
version"). Inspection sends STARTUP {CQL_VERSION: 3.0.0}: READY means no authentication; AUTHENTICATE
means a password is required and nothing else is sent. Then, with consistency ONE and a page size:
`SELECT release_version FROM system.local`, the tables and columns of `system_schema` (of `system`
before Cassandra 3.0), and per table `SELECT count(*)` and `SELECT * ... LIMIT n`.

Naming: database = keyspace, collection = table; system keyspaces are left out.
Rows: Cassandra keeps no exact row count, so `count(*)` scans the table. It gets one
`Limits.timeout`; past that (or if the server refuses), the table's rows are None and an error line
says so. The service's rows are the sum of the tables counted.

Every frame's 9-byte header is read first and its announced length checked against
`Limits.max_bytes` before the body is read; the body is then parsed with bounds checks.
"""

from __future__ import annotations

import ipaddress
import re
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from leaksonar.model import Collection, Identity, Inspection, Limits, Sample, Software
from leaksonar.protocols.base import AuthRequired, BoundedStream, CommandRefused, Endpoint, ProtocolError
from leaksonar.protocols.kit import MAX_DEPTH, SERVER_ERRORS, Learned, count, run_inspection, text

NAME = "cassandra"
ERROR, STARTUP, READY, AUTHENTICATE, OPTIONS, SUPPORTED, QUERY, RESULT = 0, 1, 2, 3, 5, 6, 7, 8
HEADER = struct.Struct(">BBhBi")
"""version, flags, stream, opcode, body length (protocol v3 and later)."""
_OLD_HEADER = struct.Struct(">BBbBi")
"""The same with a one-byte stream id (protocol v1 and v2)."""
COMPRESSED, _TRACING, _CUSTOM_PAYLOAD, WARNING = 0x01, 0x02, 0x04, 0x08
_RESPONSE = 0x80
PROTOCOL_ERROR, _INVALID = 0x000A, 0x2200
ERROR_CODES = frozenset((
    0x0000, 0x000A, 0x0100, 0x1000, 0x1001, 0x1002, 0x1003, 0x1100, 0x1200, 0x1300, 0x1400, 0x1500,
    0x2000, 0x2100, 0x2200, 0x2300, 0x2400, 0x2500,
))  # fmt: skip
ROWS, _VOID = 0x0002, 0x0001
GLOBAL_TABLES_SPEC, HAS_MORE_PAGES, _NO_METADATA = 0x0001, 0x0002, 0x0004
_CONSISTENCY_ONE = 0x0001
_FLAG_PAGE_SIZE = 0x04
_SCHEMA_PAGE = 1000
_SCHEMA_PAGES = 5
_MAX_FRAMES = 64
"""Most unsolicited frames (events, answers to abandoned requests) skipped while awaiting one reply."""
_MAX_PROBE_BODY = 64 * 1024
_NAME_BYTES = 1024
"""Longest keyspace, table or column name kept (Cassandra allows 48 characters)."""
SYSTEM_KEYSPACES = frozenset((
    "system", "system_schema", "system_auth", "system_distributed", "system_traces", "system_views",
    "system_virtual_schema", "dse_system", "dse_auth", "dse_security", "dse_leases", "dse_perf",
    "dse_insights", "dse_insights_local", "dse_system_local", "solr_admin", "OpsCenter",
))  # fmt: skip
_AUTHENTICATOR = re.compile(r"[\w.$-]{1,200}")


# --- frames ---------------------------------------------------------------------------------------


def frame(opcode: int, body: bytes = b"", stream: int = 0, version: int = 4, flags: int = 0) -> bytes:
    """One request frame."""
    return HEADER.pack(version, flags, stream, opcode, len(body)) + body


def string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">H", len(raw)) + raw


def string_map(mapping: dict[str, str]) -> bytes:
    return struct.pack(">H", len(mapping)) + b"".join(string(k) + string(v) for k, v in mapping.items())


def query_body(cql: str, page_size: int, paging_state: bytes | None = None) -> bytes:
    """A QUERY body: the statement, consistency ONE, a page size and optionally where to go on from."""
    raw = cql.encode()
    flags = _FLAG_PAGE_SIZE | (0x08 if paging_state is not None else 0)
    body = struct.pack(">i", len(raw)) + raw + struct.pack(">HBi", _CONSISTENCY_ONE, flags, page_size)
    return body + (struct.pack(">i", len(paging_state)) + paging_state if paging_state is not None else b"")


STARTUP_BODY = string_map({"CQL_VERSION": "3.0.0"})


class Reader:
    """A cursor over a frame body; every read is bounds-checked."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError("a frame body ended early")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def short(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def int(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def string(self) -> str:
        return self.take(self.short()).decode("utf-8", "replace")

    def string_list(self) -> list[str]:
        return [self.string() for _ in range(self.short())]

    def string_multimap(self) -> dict[str, list[str]]:
        return {self.string(): self.string_list() for _ in range(self.short())}

    def bytes(self) -> bytes | None:
        size = self.int()
        return None if size < 0 else self.take(size)

    def done(self) -> bool:
        return self.pos == len(self.data)


@dataclass(frozen=True, slots=True)
class Frame:
    version: int
    opcode: int
    stream: int
    body: bytes
    warnings: tuple[str, ...] = ()


def _strip_extras(flags: int, body: bytes) -> tuple[bytes, tuple[str, ...]]:
    """The body without its tracing id, warnings and custom payload (in that order), and the warnings."""
    if flags & COMPRESSED:
        raise ProtocolError("the server sent a compressed frame, though no compression was agreed")
    reader = Reader(body)
    if flags & _TRACING:
        reader.take(16)
    warnings = tuple(reader.string_list()) if flags & WARNING else ()
    if flags & _CUSTOM_PAYLOAD:
        for _ in range(reader.short()):
            reader.string()
            reader.bytes()
    return body[reader.pos :], warnings


async def read_frame(stream: BoundedStream) -> Frame:
    """One response frame; its announced length is checked against the byte cap before it is read."""
    version, flags, stream_id, opcode, length = HEADER.unpack(await stream.read_exactly(HEADER.size))
    if not version & _RESPONSE or not 1 <= version & 0x7F <= 6:
        raise ProtocolError(f"not a CQL response frame (version byte {version:#04x})")
    if length < 0:
        raise ProtocolError(f"negative frame length {length}")
    body, warnings = _strip_extras(flags, await stream.read_exactly(length))
    return Frame(version & 0x7F, opcode, stream_id, body, warnings)


def error_of(body: bytes) -> tuple[int, str]:
    reader = Reader(body)
    return reader.int(), reader.string()


def refused(body: bytes) -> CommandRefused:
    code, message = error_of(body)
    return CommandRefused(f"error {code:#06x}: {message[:200]}")


# --- identification -------------------------------------------------------------------------------


def _probe_frame(reply: bytes) -> tuple[int, int, bytes] | None:
    """(version, opcode, body) of a complete, sane response frame at the start of `reply`."""
    if len(reply) < _OLD_HEADER.size or not reply[0] & _RESPONSE:
        return None
    version = reply[0] & 0x7F
    header = HEADER if version >= 3 else _OLD_HEADER
    if not 1 <= version <= 6 or len(reply) < header.size:
        return None
    _, flags, _, opcode, length = header.unpack_from(reply)
    if flags & ~0x0F or not 0 <= length <= _MAX_PROBE_BODY or len(reply) < header.size + length:
        return None
    return version, opcode, reply[header.size : header.size + length]


def _supported_banner(body: bytes) -> tuple[str, dict[str, list[str]]] | None:
    try:
        reader = Reader(body)
        options = reader.string_multimap()
    except ProtocolError:
        return None
    if not reader.done() or "CQL_VERSION" not in options:
        return None
    shown = " ".join(f"{k}={','.join(v)}" for k, v in sorted(options.items()))
    return f"SUPPORTED {shown}"[:200], options


def _error_banner(body: bytes) -> str | None:
    try:
        code, message = error_of(body)
    except ProtocolError:
        return None
    if code not in ERROR_CODES or not message.isprintable():
        return None
    return f"ERROR {code:#06x} {message}"[:200]


def software_of(options: dict[str, list[str]]) -> Software:
    """Cassandra, or ScyllaDB (which announces its SCYLLA_* options in SUPPORTED)."""
    return Software("scylladb" if any(k.startswith("SCYLLA") for k in options) else NAME)


# --- values ---------------------------------------------------------------------------------------

_ASCII, _BIGINT, _BLOB, _BOOLEAN, _COUNTER, _DECIMAL, _DOUBLE, _FLOAT, _INT = 1, 2, 3, 4, 5, 6, 7, 8, 9
_TIMESTAMP, _UUID, _VARCHAR, _VARINT, _TIMEUUID, _INET, _DATE, _TIME = 11, 12, 13, 14, 15, 16, 17, 18
_SMALLINT, _TINYINT = 19, 20
_CUSTOM, _LIST, _MAP, _SET, _UDT, _TUPLE = 0, 0x20, 0x21, 0x22, 0x30, 0x31
_FIXED = {
    _BIGINT: ">q", _COUNTER: ">q", _DOUBLE: ">d", _FLOAT: ">f", _INT: ">i", _SMALLINT: ">h", _TINYINT: ">b",
}  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_type(reader: Reader, depth: int = 0) -> int:
    """A column type [option]: its id, its parameters consumed (nested types are not decoded)."""
    if depth > MAX_DEPTH:
        raise ProtocolError("a column type is nested too deeply")
    kind = reader.short()
    if kind == _CUSTOM:
        reader.string()
    elif kind in (_LIST, _SET):
        read_type(reader, depth + 1)
    elif kind == _MAP:
        read_type(reader, depth + 1)
        read_type(reader, depth + 1)
    elif kind == _UDT:
        reader.string()
        reader.string()
        for _ in range(reader.short()):
            reader.string()
            read_type(reader, depth + 1)
    elif kind == _TUPLE:
        for _ in range(reader.short()):
            read_type(reader, depth + 1)
    return kind


def decode(kind: int, raw: bytes | None, limits: Limits) -> Any:
    """A cell as a Python value: text, numbers, uuid, timestamps and addresses decoded; anything else
    as hex, every string cut to `limits.value_chars`."""
    if raw is None:
        return None
    try:
        value = _decode(kind, raw, limits)
    except (ValueError, OverflowError, struct.error):
        value = raw[: limits.value_chars].hex()
    return value[: limits.value_chars] if isinstance(value, str) else value


def _decode(kind: int, raw: bytes, limits: Limits) -> Any:
    if kind in (_ASCII, _VARCHAR):
        return text(raw, limits)
    if kind in _FIXED:
        return struct.unpack(_FIXED[kind], raw)[0]
    if kind == _BOOLEAN:
        return struct.unpack(">?", raw)[0]
    if kind == _VARINT:
        return int.from_bytes(raw[:64], "big", signed=True)
    if kind == _TIMESTAMP:
        return (_EPOCH + timedelta(milliseconds=struct.unpack(">q", raw)[0])).isoformat()
    if kind in (_UUID, _TIMEUUID):
        return str(uuid.UUID(bytes=raw))
    if kind == _INET:
        return str(ipaddress.ip_address(raw))
    if kind == _DATE:
        return (date(1970, 1, 1) + timedelta(days=struct.unpack(">I", raw)[0] - (1 << 31))).isoformat()
    return raw[: limits.value_chars].hex()


@dataclass(frozen=True, slots=True)
class Rows:
    columns: tuple[tuple[str, int], ...]
    rows: tuple[tuple[bytes | None, ...], ...]
    paging_state: bytes | None = None


def parse_rows(body: bytes) -> Rows:
    """A RESULT body of kind Rows (Void: no rows)."""
    reader = Reader(body)
    kind = reader.int()
    if kind == _VOID:
        return Rows((), ())
    if kind != ROWS:
        raise ProtocolError(f"expected rows, got result kind {kind}")
    flags, count = reader.int(), reader.int()
    paging_state = reader.bytes() if flags & HAS_MORE_PAGES else None
    if flags & _NO_METADATA:
        raise ProtocolError("rows came without metadata")
    columns = []
    for index in range(count):
        if index == 0 or not flags & GLOBAL_TABLES_SPEC:  # keyspace and table: once, or per column
            reader.string()
            reader.string()
        columns.append((reader.string(), read_type(reader)))
    n_rows = reader.int()
    if n_rows < 0 or n_rows * max(1, count) * 4 > len(body):
        raise ProtocolError(f"a result announced {n_rows} rows that its frame cannot hold")
    rows = tuple(tuple(reader.bytes() for _ in columns) for _ in range(n_rows))
    return Rows(tuple(columns), rows, paging_state)


def records(result: Rows, limits: Limits) -> Iterator[dict[str, Any]]:
    for row in result.rows:
        yield {
            name: decode(kind, cell, limits) for (name, kind), cell in zip(result.columns, row, strict=True)
        }


# --- the session ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Client:
    """A CQL connection, opened (OPTIONS, STARTUP) on first use and dropped after a failed exchange, so
    that a request abandoned on timeout cannot confuse the next one."""

    endpoint: Endpoint
    limits: Limits
    version: int = 4
    supported: dict[str, list[str]] = field(default_factory=dict)
    _stream: BoundedStream | None = None
    _next_id: int = 0

    async def _connect(self) -> BoundedStream:
        stream = await BoundedStream.open(self.endpoint, self.limits)
        try:
            await self._start(stream)
        except BaseException:
            await stream.close()
            raise
        return stream

    async def _start(self, stream: BoundedStream) -> None:
        options = await self.exchange(stream, OPTIONS, b"")
        if options.opcode == ERROR:
            raise refused(options.body)
        if options.opcode == SUPPORTED:
            self.supported = Reader(options.body).string_multimap()
        started = await self.exchange(stream, STARTUP, STARTUP_BODY)
        if started.opcode == AUTHENTICATE:
            name = Reader(started.body).string()
            await self.authenticate(
                stream, name if _AUTHENTICATOR.fullmatch(name) else "unnamed authenticator"
            )
        elif started.opcode == ERROR:
            raise refused(started.body)
        elif started.opcode != READY:
            raise ProtocolError(f"STARTUP was answered with opcode {started.opcode}")

    async def authenticate(self, stream: BoundedStream, authenticator: str) -> None:
        """The server asks for credentials: inspection never sends any."""
        raise AuthRequired(authenticator)

    async def exchange(self, stream: BoundedStream, opcode: int, body: bytes) -> Frame:
        """Send one request and read the frames until its answer (or until an ERROR in another protocol
        version: the server speaks only that one)."""
        self._next_id = (self._next_id + 1) % 0x7FFF
        await stream.send(frame(opcode, body, self._next_id, self.version))
        for _ in range(_MAX_FRAMES):
            reply = await read_frame(stream)
            if reply.stream == self._next_id or (reply.opcode == ERROR and reply.version != self.version):
                return reply
        raise ProtocolError(f"no answer among {_MAX_FRAMES} frames")

    async def open(self) -> None:
        """Connect; with v3 if the server answers v4 with a protocol error about the version."""
        try:
            self._stream = await self._connect()
        except CommandRefused as exc:
            if self.version != 4 or not _downgrade(exc):
                raise
            self.version = 3
            self._stream = await self._connect()

    async def query(self, cql: str, page_size: int, pages: int = 1) -> Rows:
        """Up to `pages` pages of `cql`'s rows, `page_size` rows each."""
        columns: tuple[tuple[str, int], ...] = ()
        rows: list[tuple[bytes | None, ...]] = []
        state: bytes | None = None
        for _ in range(pages):
            result = await self._query_page(cql, page_size, state)
            columns, state = result.columns or columns, result.paging_state
            rows.extend(result.rows)
            if state is None:
                break
        return Rows(columns, tuple(rows), state)

    async def _query_page(self, cql: str, page_size: int, state: bytes | None) -> Rows:
        if self._stream is None:
            await self.open()
        assert self._stream is not None
        try:
            reply = await self.exchange(self._stream, QUERY, query_body(cql, page_size, state))
        except Exception:
            await self.close()
            raise
        if reply.opcode == ERROR:
            raise refused(reply.body)
        if reply.opcode != RESULT:
            raise ProtocolError(f"a query was answered with opcode {reply.opcode}")
        return parse_rows(reply.body)

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.close()


def _downgrade(exc: CommandRefused) -> bool:
    return str(exc).startswith(f"error {PROTOCOL_ERROR:#06x}") and "version" in str(exc)


# --- inspection -----------------------------------------------------------------------------------


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _schema(client: Client, limits: Limits) -> dict[tuple[str, str], list[str]]:
    """User tables -> their column names, from system_schema (system.schema_* before Cassandra 3.0)."""
    try:
        tables = await client.query(
            "SELECT keyspace_name, table_name FROM system_schema.tables", _SCHEMA_PAGE, _SCHEMA_PAGES
        )
        columns = await client.query(
            "SELECT keyspace_name, table_name, column_name FROM system_schema.columns",
            _SCHEMA_PAGE,
            _SCHEMA_PAGES,
        )
    except CommandRefused as exc:
        if not str(exc).startswith(f"error {_INVALID:#06x}"):
            raise
        tables = await client.query(
            "SELECT keyspace_name, columnfamily_name FROM system.schema_columnfamilies",
            _SCHEMA_PAGE,
            _SCHEMA_PAGES,
        )
        columns = await client.query(
            "SELECT keyspace_name, columnfamily_name, column_name FROM system.schema_columns",
            _SCHEMA_PAGE,
            _SCHEMA_PAGES,
        )
    found: dict[tuple[str, str], list[str]] = {}
    for keyspace, table in _text_rows(tables):
        if keyspace not in SYSTEM_KEYSPACES and not keyspace.startswith("system_"):
            found[(keyspace, table)] = []
    for keyspace, table, column in _text_rows(columns):
        found.get((keyspace, table), []).append(column)
    return dict(sorted(found.items()))


def _text_rows(result: Rows) -> Iterator[tuple[str, ...]]:
    for row in result.rows:
        yield tuple((cell or b"")[:_NAME_BYTES].decode("utf-8", "replace") for cell in row)


async def _count(client: Client, learned: Learned, keyspace: str, table: str) -> int | None:
    try:
        result = await client.query(f"SELECT count(*) FROM {quote(keyspace)}.{quote(table)}", 1)
        cells = [row[0] for row in result.rows[:1] if row]
        if not cells or cells[0] is None or len(cells[0]) != 8:
            raise ProtocolError("count(*) returned no number")
        return count(int.from_bytes(cells[0], "big", signed=True))
    except SERVER_ERRORS as exc:
        learned.failed(f"Counting {keyspace}.{table}", exc)
        return None


async def _sample(client: Client, learned: Learned, keyspace: str, table: str) -> tuple[dict[str, Any], ...]:
    limits = client.limits
    try:
        result = await client.query(
            f"SELECT * FROM {quote(keyspace)}.{quote(table)} LIMIT {limits.sample_rows}", limits.sample_rows
        )
    except SERVER_ERRORS as exc:
        learned.failed(f"Sampling {keyspace}.{table}", exc)
        return ()
    return tuple(records(result, limits))[: limits.sample_rows]


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    limits = learned.limits
    client = Client(endpoint, limits)
    try:
        try:
            await client.open()
        except AuthRequired as exc:
            learned.details["authenticator"] = str(exc)
            raise
        learned.auth = "none"
        learned.software = software_of(client.supported)
        learned.details["protocol_version"] = client.version
        local = await client.query("SELECT release_version FROM system.local", 1)
        if local.rows and local.rows[0][0]:
            learned.software = Software(learned.software.name, text(local.rows[0][0], limits)[:40])
        await _tables(client, learned, await _schema(client, limits))
    finally:
        await client.close()


async def _tables(client: Client, learned: Learned, schema: dict[tuple[str, str], list[str]]) -> None:
    limits = client.limits
    learned.databases = len({keyspace for keyspace, _ in schema})
    shown = list(schema)[: limits.max_collections]
    learned.capped(len(shown), len(schema), "tables")
    counted: list[int] = []
    for keyspace, table in shown:
        rows = await _count(client, learned, keyspace, table)
        documents = await _sample(client, learned, keyspace, table)
        columns = schema[(keyspace, table)] or sorted({k for d in documents for k in d})
        learned.collections.append(Collection(keyspace, table, rows, None, tuple(columns)))
        if documents:
            learned.samples.append(Sample(keyspace, table, documents))
        if rows is not None:
            counted.append(rows)
    learned.rows = sum(counted) if counted or not shown else None


class CassandraProtocol:
    name = NAME
    default_ports = (9042,)
    probe = frame(OPTIONS)

    def match(self, reply: bytes) -> Identity | None:
        """A SUPPORTED frame naming CQL_VERSION, or an ERROR frame with a known code and a message."""
        parsed = _probe_frame(reply)
        if parsed is None:
            return None
        _, opcode, body = parsed
        if opcode == SUPPORTED and (supported := _supported_banner(body)) is not None:
            banner, options = supported
            return Identity(self.name, software_of(options), "unknown", banner)
        if opcode == ERROR and (banner := _error_banner(body)) is not None:
            return Identity(self.name, Software(NAME), "unknown", banner)
        return None

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """STARTUP, then (without authentication only) version, schema, counts and a bounded sample."""
        return await run_inspection(self.name, partial(_inspect, endpoint), identity, limits, Software(NAME))


PROTOCOL = CassandraProtocol()
