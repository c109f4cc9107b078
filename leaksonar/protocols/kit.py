"""The protocol kit every protocol module uses: what an inspection has learned so far, one deadline over
the whole inspection, errors as kinds with plain sentences (capped), one description of a failure, one
parser for the numbers servers report, and bounded decoding of sampled values."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from itertools import islice
from typing import Any

from leaksonar.model import (
    Auth,
    Collection,
    ErrorKind,
    Identity,
    Inspection,
    Limits,
    Problem,
    Sample,
    Software,
)
from leaksonar.protocols.base import AuthRequired, CommandRefused, ProtocolError, ReplyTooLarge

MAX_DEPTH = 4
"""Deepest nesting accepted in a reply or kept from a JSON value."""
MAX_ITEMS = 50
"""Most elements kept from one sampled container (hash, set, JSON object ...)."""
MAX_ERRORS = 20
"""Most errors kept per inspection; a failing server cannot flood its finding."""

SERVER_ERRORS = (
    OSError,
    TimeoutError,
    EOFError,
    ReplyTooLarge,
    ProtocolError,
    CommandRefused,
    AuthRequired,
)
"""What a misbehaving server makes one exchange raise: reported, and the inspection goes on."""

Steps = Callable[["Learned"], Awaitable[None]]


# --- numbers --------------------------------------------------------------------------------------


def count(value: Any) -> int | None:
    """A count or size a server reported: a whole number from 0 to 2**63 - 1, given as an int, a float or
    Decimal (rounded) or decimal text. Anything else (negative, bool, NaN, garbage, absent) is None;
    never raises."""
    if isinstance(value, str | bytes):
        digits = value.strip()
        value = int(digits) if digits.isascii() and digits.isdigit() and len(digits) <= 19 else None
    elif isinstance(value, float | Decimal):
        value = round(value) if math.isfinite(value) and value >= 0 else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        return None
    return value


# --- failures -------------------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it, and so on (drivers wrap the network's exceptions)."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def _db_api(exc: BaseException) -> tuple[int, str] | None:
    """(code, message) of a DB-API driver's exception."""
    args = exc.args
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        return args[0], args[1]
    return None


_CLIENT_LOST = frozenset({2003, 2006, 2013})
"""MySQL client codes: cannot connect, server gone away, connection lost."""


def _kind(exc: BaseException) -> ErrorKind | None:
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, ReplyTooLarge):
        return ErrorKind.OVER_LIMIT
    if isinstance(exc, AuthRequired):
        return ErrorKind.AUTH_REQUIRED
    if isinstance(exc, CommandRefused) or getattr(exc, "sqlstate", None):
        return ErrorKind.COMMAND_REFUSED
    if isinstance(exc, ProtocolError | ValueError):
        return ErrorKind.PROTOCOL_ERROR
    if isinstance(exc, OSError | EOFError):
        return ErrorKind.REFUSED
    coded = _db_api(exc)
    if coded is None or _lost(exc):
        return None  # a lost connection: what caused it (a timeout, a reset) says more, if known
    return ErrorKind.PROTOCOL_ERROR if 2000 <= coded[0] < 3000 else ErrorKind.COMMAND_REFUSED


def _lost(exc: BaseException) -> bool:
    coded = _db_api(exc)
    return coded is not None and coded[0] in _CLIENT_LOST


def kind_of(exc: BaseException) -> ErrorKind:
    """The kind of a failure, from the exception or (for a driver's wrapper) what caused it."""
    chain = list(_chain(exc))
    found = next((kind for e in chain if (kind := _kind(e)) is not None), None)
    if found is None:
        return ErrorKind.REFUSED if any(_lost(e) for e in chain) else ErrorKind.UNKNOWN
    return found


def reason(exc: BaseException, limits: Limits) -> str:
    """A short plain phrase for why an exchange failed (no trailing full stop)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {limits.timeout:g} s"
    if isinstance(exc, ReplyTooLarge):
        return f"reply too large: {exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the server closed the connection mid-reply"
    if isinstance(exc, ConnectionError):
        return "the server closed or reset the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return f"network error: {exc.strerror}"
    coded = _db_api(exc)
    text = f"{coded[1]} (error {coded[0]})" if coded else str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(".")[:200]


def describe(exc: BaseException, limits: Limits) -> Problem:
    """The one description of a failed exchange: its kind and a short phrase."""
    return Problem(kind_of(exc), reason(exc, limits))


# --- what an inspection has learned ---------------------------------------------------------------


@dataclass(slots=True)
class Learned:
    """What an inspection has found so far; survives the deadline or a broken connection."""

    software: Software | None
    auth: Auth
    limits: Limits
    databases: int | None = None
    rows: int | None = None
    size_bytes: int | None = None
    rows_estimated: bool = False
    """`rows` leave out collections past a cap (`left_out`). A collection's own estimate is said by its
    `Collection.rows_estimated`; that, a collection not counted (rows None) or this makes the service's
    rows estimated."""
    collections: list[Collection] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    dropped: set[Problem] = field(default_factory=set)
    """Errors past MAX_ERRORS: only counted."""
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, kind: ErrorKind, sentence: str) -> None:
        """One error sentence (a repeat is kept once; past MAX_ERRORS only counted)."""
        problem = Problem(kind, sentence)
        if problem in self.errors:
            return
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(problem)
        else:
            self.dropped.add(problem)

    def failed(self, what: str, exc: BaseException) -> None:
        """`what` failed because of `exc`: "Sampling db0 failed: no answer within 3 s."."""
        problem = describe(exc, self.limits)
        self.add(problem.kind, f"{what} failed: {problem.message}.")

    def capped(self, shown: int, total: int, what: str, *, counted: bool = True) -> None:
        """Only `shown` of `total` `what` were inspected (a `Limits` cap). `counted`: the service's rows
        are the sum of what was inspected, so they become a lower bound (`left_out`); False where the
        server counts every one itself."""
        if shown >= total:
            return
        sentence = f"Only the first {shown} of {total} {what} were inspected."
        if counted:
            self.left_out(sentence)
        else:
            self.add(ErrorKind.OVER_LIMIT, sentence)

    def left_out(self, sentence: str) -> None:
        """Collections past a cap were not counted (`sentence` says which): the service's rows, the sum
        of those counted, are a lower bound and so estimated."""
        self.add(ErrorKind.OVER_LIMIT, sentence)
        self.rows_estimated = True

    def inspection(self, protocol: str) -> Inspection:
        """What was learned; every count passes `count` again (a sum of counts may leave its range)."""
        more = (
            (Problem(ErrorKind.UNKNOWN, f"{len(self.dropped)} more errors were not kept."),)
            if self.dropped
            else ()
        )
        collections = tuple(
            replace(c, rows=count(c.rows), size_bytes=count(c.size_bytes)) for c in self.collections
        )
        rows = count(self.rows)
        return Inspection(
            protocol=protocol,
            software=self.software,
            auth=self.auth,
            databases=count(self.databases),
            collections=collections,
            rows=rows,
            size_bytes=count(self.size_bytes),
            rows_estimated=rows is not None
            and (self.rows_estimated or any(c.rows_estimated or c.rows is None for c in collections)),
            samples=tuple(self.samples),
            errors=(*self.errors, *more),
            details=self.details,
        )

    async def add_sampled(
        self,
        database: str,
        name: str,
        rows: int | None,
        size_bytes: int | None,
        sampling: Awaitable[tuple[dict[str, Any], ...]],
    ) -> None:
        """Collection `name` with its counts, and the documents of `sampling` unless the server
        misbehaves while they are read (then an error says why)."""
        documents: tuple[dict[str, Any], ...] = ()
        try:
            documents = await sampling
        except SERVER_ERRORS as exc:
            self.failed(f"Sampling {name}", exc)
        self.collections.append(Collection(database, name, rows, size_bytes, field_names(documents)))
        if documents:
            self.samples.append(Sample(database, name, documents))


async def run_inspection(
    protocol: str, steps: Steps, identity: Identity, limits: Limits, software: Software | None = None
) -> Inspection:
    """Run `steps` under one deadline (`limits.service_budget`) and return what they learned. AuthRequired
    makes auth "required"; any other failure becomes one error; never raises for the server's doing."""
    learned = Learned(identity.software or software, identity.auth, limits)
    deadline = asyncio.timeout(limits.service_budget)
    try:
        async with deadline:
            await steps(learned)
    except AuthRequired:
        learned.auth = "required"
    except Exception as exc:  # a hostile server's failure is a fact to report, never a crash
        if deadline.expired():
            learned.add(
                ErrorKind.TIMEOUT, f"Inspection stopped: the {limits.service_budget:g} s budget ran out."
            )
        else:
            problem = describe(exc, limits)
            learned.add(problem.kind, f"Inspection stopped: {problem.message}.")
    return learned.inspection(protocol)


# --- sampled values -------------------------------------------------------------------------------


def value_window(limits: Limits) -> int:
    """Bytes read from one stored value: enough to decode a small JSON document."""
    return max(1, min(limits.value_chars * 16, limits.max_bytes))


def text(raw: bytes, limits: Limits) -> str:
    """`raw` as text cut to `limits.value_chars` characters."""
    return raw[: limits.value_chars * 4].decode("utf-8", "replace")[: limits.value_chars]


def decode_value(raw: bytes, limits: Limits) -> Any:
    """A stored value for a sample document: a bounded JSON object/array if it is one, else text."""
    if raw.lstrip()[:1] in (b"{", b"["):
        try:
            return bounded(json.loads(raw), limits)
        except (ValueError, RecursionError):
            pass
    return text(raw, limits)


def bounded(value: Any, limits: Limits, depth: int = 0) -> Any:
    """A decoded JSON value with strings, containers and nesting cut to the sampling limits."""
    if isinstance(value, str):
        return value[: limits.value_chars]
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {
            str(k)[: limits.value_chars]: bounded(v, limits, depth + 1)
            for k, v in islice(value.items(), MAX_ITEMS)
        }
    if isinstance(value, list):
        return [bounded(v, limits, depth + 1) for v in value[:MAX_ITEMS]]
    return value


def field_names(documents: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """Sorted names of the object fields seen in the documents' values."""
    names: set[str] = set()
    for doc in documents:
        value = doc.get("value")
        for obj in value if isinstance(value, list) else [value]:
            if isinstance(obj, dict):
                names.update(obj)
    return tuple(sorted(names))
