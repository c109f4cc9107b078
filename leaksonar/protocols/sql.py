"""Shared by the SQL protocol modules: measuring tables read-only into what the inspection has learned
(a table not counted exactly keeps the server's estimate, marked `rows_estimated`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Protocol

from leaksonar.model import Collection, ErrorKind, Limits, Sample
from leaksonar.protocols.base import AuthRequired, timed
from leaksonar.protocols.kit import Learned, count

CONCURRENCY = 4
"""Connections open at once to one server (one query at a time on each)."""
MAX_SAMPLE_COLUMNS = 64
MIN_ROW_BYTES = 32
"""No stored row takes less (header and line pointer): bounds the rows of a table of known size."""


class Session(Protocol):
    """One open connection to one database."""

    @property
    def closed(self) -> bool: ...

    async def fetch(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]: ...


Connect = Callable[[str], AbstractAsyncContextManager[Session]]


@dataclass(frozen=True, slots=True)
class Dialect:
    quote: Callable[[str], str]
    """Quote one identifier."""
    prefix: Callable[[str, int], str]
    """SQL for the first n characters of a (quoted) column, as text."""


@dataclass(frozen=True, slots=True)
class Table:
    database: str
    name: str
    """As shown to the user."""
    ref: str
    """As written in SQL: every part quoted."""
    estimate: int | None
    """The server's own row estimate (None: unknown)."""
    size_bytes: int | None
    fields: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.database}.{self.name}"

    def collection(self, rows: int | None, *, counted: bool) -> Collection:
        """The table with `rows`: counted exactly, or else the server's estimate."""
        estimated = rows is not None and not counted
        return Collection(self.database, self.name, rows, self.size_bytes, self.fields, estimated)


def counts_exactly(table: Table, limits: Limits) -> bool:
    """Count rows when the estimate (or, if unknown, the most rows its size allows) is small."""
    bound = table.estimate
    if bound is None and table.size_bytes is not None:
        bound = table.size_bytes // MIN_ROW_BYTES
    return bound is not None and bound < limits.exact_count_below


def cap_tables(tables: Sequence[Table], room: int, learned: Learned) -> list[Table]:
    """The first `room` of `tables`, saying so when the others are left out."""
    if len(tables) > room:
        cap = learned.limits.max_collections
        learned.left_out(f"Only the first {cap} tables were inspected (max_collections).")
    return list(tables[:room])


def document(fields: Sequence[str], values: Sequence[Any], chars: int) -> dict[str, str | None]:
    """One sampled row as column -> text, each value cut to `chars` characters."""
    pairs = zip(fields, values, strict=True)
    return {name: None if value is None else _text(value)[:chars] for name, value in pairs}


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


async def measure(
    table: Table, session: Session, dialect: Dialect, learned: Learned
) -> tuple[Collection, Sample | None]:
    """Row count (exact when small, else the estimate) and a sample of one table."""
    limits = learned.limits
    rows, counted = table.estimate, False
    if counts_exactly(table, limits):
        try:
            rows = count((await timed(session.fetch(f"SELECT count(*) FROM {table.ref}"), limits))[0][0])
            counted = True
        except Exception as exc:
            learned.failed(f"Counting the rows of {table.label}", exc)
    elif rows is None:
        message = f"The row count of {table.label} is unknown: no estimate, and too large to count."
        learned.add(ErrorKind.OVER_LIMIT, message)
    sample = None
    fields = table.fields[:MAX_SAMPLE_COLUMNS]
    if fields and rows != 0 and limits.sample_rows > 0:
        values = ", ".join(dialect.prefix(dialect.quote(f), limits.value_chars) for f in fields)
        sql = f"SELECT {values} FROM {table.ref} LIMIT {limits.sample_rows}"
        try:
            records = await timed(session.fetch(sql), limits)
            docs = tuple(document(fields, r, limits.value_chars) for r in records[: limits.sample_rows])
            sample = Sample(table.database, table.name, docs)
        except Exception as exc:
            learned.failed(f"Sampling {table.label}", exc)
    return table.collection(rows, counted=counted), sample


def placeholders(learned: Learned, tables: Sequence[Table]) -> int:
    """Add `tables` with their estimates to `learned` (measuring replaces them); where they start."""
    start = len(learned.collections)
    learned.collections += [t.collection(t.estimate, counted=False) for t in tables]
    total(learned)
    return start


def total(learned: Learned) -> None:
    """The service's rows: the sum of its tables' known rows."""
    learned.rows = sum(c.rows for c in learned.collections if c.rows is not None)


async def measure_session(
    session: Session, tables: Sequence[Table], start: int, dialect: Dialect, learned: Learned
) -> None:
    """Measure the tables of one database (added at `start` by `placeholders`) on an open session, in
    order, while the connection lasts."""
    for i, table in enumerate(tables):
        if session.closed:
            lost = f"{len(tables) - i} tables of {table.database} were not measured: the connection was lost."
            learned.add(ErrorKind.REFUSED, lost)
            break
        learned.collections[start + i], sample = await measure(table, session, dialect, learned)
        total(learned)
        if sample is not None:
            learned.samples.append(sample)


async def measure_tables(
    tables: Sequence[Table], connect: Connect, dialect: Dialect, learned: Learned
) -> None:
    """Measure tables database by database, one connection per database, a few databases at once."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(group: list[Table]) -> None:
        database, start = group[0].database, placeholders(learned, group)
        try:
            async with gate, connect(database) as session:
                await measure_session(session, group, start, dialect, learned)
        except AuthRequired:
            message = f"Database {database} asks for a password; its tables were not measured."
            learned.add(ErrorKind.AUTH_REQUIRED, message)
        except Exception as exc:
            learned.failed(f"Connecting to database {database}", exc)

    await asyncio.gather(*(one(list(g)) for _, g in groupby(tables, key=lambda t: t.database)))


def finish(learned: Learned) -> None:
    """Tables and samples in (database, name) order."""
    learned.collections.sort(key=lambda c: (c.database, c.name))
    learned.samples.sort(key=lambda s: (s.database, s.collection))
