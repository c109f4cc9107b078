"""Shared by the SQL protocol modules: time budget, error report, measuring tables read-only, and the
guarded run of a whole inspection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Protocol, TypeVar

from leaksonar.model import Auth, Collection, Identity, Inspection, Limits, Sample, Software
from leaksonar.protocols.base import Endpoint

T = TypeVar("T")

CONCURRENCY = 4
"""Connections open at once to one server (one query at a time on each)."""
MAX_SAMPLE_COLUMNS = 64
MAX_ERRORS = 20
MIN_ROW_BYTES = 32
"""No stored row takes less (header and line pointer): bounds the rows of a table of known size."""


class AuthRequired(Exception):
    """The server wants a password; none is ever sent or guessed."""


class Budget:
    """The time left for one inspection: every call gets min(limits.timeout, time left)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._deadline = asyncio.get_running_loop().time() + limits.service_budget

    def _left(self) -> float:
        return self._deadline - asyncio.get_running_loop().time()

    @property
    def spent(self) -> bool:
        return self._left() <= 0

    async def run(self, call: Awaitable[T]) -> T:
        seconds = max(0.0, min(self.limits.timeout, self._left()))
        try:
            return await asyncio.wait_for(call, seconds)
        except TimeoutError as exc:
            if seconds < self.limits.timeout:
                raise TimeoutError(f"the time budget of {self.limits.service_budget:g} s ran out") from exc
            raise TimeoutError(f"no answer within {seconds:g} s") from exc


def describe(exc: BaseException) -> str:
    """A short plain description of why a call failed."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    args = exc.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = f"{args[1]} (error {args[0]})"  # DB-API drivers: (code, message)
    else:
        text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(".")[:200]


@dataclass
class Report:
    """The errors of one inspection as plain sentences, capped so a failing server cannot flood it."""

    errors: list[str] = field(default_factory=list)
    dropped: int = 0
    seen: set[str] = field(default_factory=set)

    def add(self, sentence: str) -> None:
        if sentence in self.seen:
            return
        self.seen.add(sentence)
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(sentence)
        else:
            self.dropped += 1

    def failed(self, action: str, exc: BaseException) -> None:
        self.add(f"Could not {action}: {describe(exc)}.")

    def sentences(self) -> tuple[str, ...]:
        more = (f"{self.dropped} more errors were not kept.",) if self.dropped else ()
        return (*self.errors, *more)


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

    def collection(self, rows: int | None) -> Collection:
        return Collection(self.database, self.name, rows, self.size_bytes, self.fields)


def counts_exactly(table: Table, limits: Limits) -> bool:
    """Count rows when the estimate (or, if unknown, the most rows its size allows) is small."""
    bound = table.estimate
    if bound is None and table.size_bytes is not None:
        bound = table.size_bytes // MIN_ROW_BYTES
    return bound is not None and bound < limits.exact_count_below


def cap_tables(tables: Sequence[Table], room: int, limits: Limits, report: Report) -> list[Table]:
    """The first `room` of `tables`, saying so when the others are left out."""
    if len(tables) > room:
        report.add(f"Only the first {limits.max_collections} tables were inspected (max_collections).")
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
    table: Table, session: Session, dialect: Dialect, budget: Budget, report: Report
) -> tuple[Collection, Sample | None]:
    """Row count (exact when small, else the estimate) and a sample of one table."""
    limits = budget.limits
    rows = table.estimate
    if counts_exactly(table, limits):
        try:
            rows = int((await budget.run(session.fetch(f"SELECT count(*) FROM {table.ref}")))[0][0])
        except Exception as exc:
            report.failed(f"count the rows of {table.label}", exc)
    elif rows is None:
        report.add(f"The row count of {table.label} is unknown: no estimate, and too large to count.")
    sample = None
    fields = table.fields[:MAX_SAMPLE_COLUMNS]
    if fields and rows != 0 and limits.sample_rows > 0:
        values = ", ".join(dialect.prefix(dialect.quote(f), limits.value_chars) for f in fields)
        sql = f"SELECT {values} FROM {table.ref} LIMIT {limits.sample_rows}"
        try:
            records = await budget.run(session.fetch(sql))
            docs = tuple(document(fields, r, limits.value_chars) for r in records[: limits.sample_rows])
            sample = Sample(table.database, table.name, docs)
        except Exception as exc:
            report.failed(f"sample {table.label}", exc)
    return table.collection(rows), sample


async def measure_session(
    session: Session, tables: Sequence[Table], dialect: Dialect, budget: Budget, report: Report
) -> tuple[list[Collection], list[Sample]]:
    """Measure the tables of one database on an open session, in order, while time and connection last.
    A table not measured keeps the server's estimate."""
    collections = [t.collection(t.estimate) for t in tables]
    samples: list[Sample] = []
    for i, table in enumerate(tables):
        if budget.spent or session.closed:
            why = "the time budget was used up" if budget.spent else "the connection was lost"
            report.add(f"{len(tables) - i} tables of {table.database} were not measured: {why}.")
            break
        collections[i], sample = await measure(table, session, dialect, budget, report)
        if sample is not None:
            samples.append(sample)
    return collections, samples


async def measure_tables(
    tables: Sequence[Table], connect: Connect, dialect: Dialect, budget: Budget, report: Report
) -> tuple[list[Collection], list[Sample]]:
    """Measure tables database by database, one connection per database, a few databases at once."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(group: list[Table]) -> tuple[list[Collection], list[Sample]]:
        database = group[0].database
        try:
            async with gate, connect(database) as session:
                return await measure_session(session, group, dialect, budget, report)
        except AuthRequired:
            report.add(f"Database {database} asks for a password; its tables were not measured.")
        except Exception as exc:
            report.failed(f"connect to database {database}", exc)
        return [t.collection(t.estimate) for t in group], []

    groups = [list(g) for _, g in groupby(tables, key=lambda t: t.database)]
    results = await asyncio.gather(*(one(g) for g in groups))
    return [c for cs, _ in results for c in cs], [s for _, ss in results for s in ss]


def exposed(
    protocol: str,
    software: Software | None,
    databases: int,
    size_bytes: int | None,
    collections: Iterable[Collection],
    samples: Iterable[Sample],
    report: Report,
    details: dict[str, Any],
) -> Inspection:
    """The inspection of a server that let us in without a password."""
    ordered = tuple(sorted(collections, key=lambda c: (c.database, c.name)))
    return Inspection(
        protocol,
        software,
        "none",
        databases=databases,
        collections=ordered,
        rows=sum(c.rows for c in ordered if c.rows is not None),
        size_bytes=size_bytes,
        samples=tuple(sorted(samples, key=lambda s: (s.database, s.collection))),
        errors=report.sentences(),
        details=details,
    )


def closed(protocol: str, software: Software | None, auth: Auth, report: Report) -> Inspection:
    """The inspection of a server that did not let us in (or could not be talked to)."""
    return Inspection(protocol, software, auth, errors=report.sentences())


async def run_guarded(
    protocol: str,
    title: str,
    steps: Callable[[Endpoint, Budget, Report], Awaitable[Inspection]],
    endpoint: Endpoint,
    identity: Identity,
    limits: Limits,
    software_if_required: Software | None,
) -> Inspection:
    """Run `steps` with a fresh budget and report. A password request makes it a closed inspection with
    auth "required"; any other failure becomes one error sentence and auth "unknown"; never raises."""
    budget, report = Budget(limits), Report()
    try:
        return await steps(endpoint, budget, report)
    except AuthRequired:
        return closed(protocol, software_if_required, "required", report)
    except Exception as exc:
        report.failed(f"inspect {title} on {endpoint.ip}:{endpoint.port}", exc)
        return closed(protocol, identity.software, "unknown", report)
