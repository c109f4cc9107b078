"""The query language: a Lucene-style query (luqum) compiled to a parameterised SQLAlchemy where-clause
over `services`. Every value reaches SQL as a bound parameter; free text reaches the full-text index as
quoted words (leaksonar.store.fulltext)."""

from __future__ import annotations

import fnmatch
import math
import re
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from luqum import tree
from luqum.exceptions import IllegalCharacterError, ParseError
from luqum.parser import parser
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Table,
    and_,
    false,
    func,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from leaksonar.model import EVENT_TYPES, PII_CATEGORIES, SEVERITIES, SEVERITY_RANK
from leaksonar.store.addresses import address_key, network_keys, parse_network
from leaksonar.store.fulltext import TextMatch
from leaksonar.store.schema import events, findings, service_btc, service_cert_names, service_pii, services

MAX_LENGTH = 2000
"""Longest query accepted (characters)."""
MAX_DEPTH = 24
"""Deepest nesting of groups and operators accepted."""
MAX_TERMS = 200
"""Most terms (field values and free-text words) in one query."""

INTEGER = (-(2**31), 2**31 - 1)
"""What an INTEGER column holds (32-bit on PostgreSQL); BIGINT holds BIGINT (64-bit, as SQLite's)."""
BIGINT = (-(2**63), 2**63 - 1)
AFTER_ALL_TIMES = "9999-12-31T24:00:00Z"
"""Sorts after every stored time: the end of 9999-12-31, the last day a time can name."""

NO_SEVERITY = -1
"""`services.rank` of a service without an assessment."""

FIELDS: dict[str, str] = {
    "ip": "address: 127.0.0.1, CIDR 127.77.0.0/16, range 127.0.0.1-127.0.0.9, wildcard 127.77.*; IPv6"
    ' quoted (its colons): ip:"fd00::1", ip:"2001:db8::/32"',
    "port": "port number: port:9200, port:[1 TO 1024]",
    "protocol": "protocol: redis, mongodb, elasticsearch, postgresql, mysql ... (wildcards: mongo*)",
    "software": "software name, e.g. software:opensearch",
    "version": "software version, e.g. version:7.10.2 or version:7.*",
    "auth": "none, required or unknown",
    "exposed": "true (answers without a password) or false",
    "severity": "info, low, medium, high, critical; also by rank: severity:>=high",
    "pii": "personal-data category: " + ", ".join(PII_CATEGORIES),
    "rows": "rows (documents, keys) in the service: rows:>1000000, rows:[1e6 TO *]",
    "size_bytes": "stored size in bytes: size_bytes:>=1e9",
    "collections": "number of collections (collections:>10) or a collection name (collections:person)",
    "infected": "true when a ransom note or attack sign was found",
    "btc": "a bitcoin address from a ransom note; btc:* = any",
    "country": "two-letter country code, e.g. country:CN",
    "asn": "autonomous system number: asn:64500 or asn:AS64500",
    "org": 'network owner, e.g. org:"Example Net" or org:example*',
    "first_seen": "first seen (UTC, ISO 8601): first_seen:>=2026-11-01, [2026-11-01 TO 2026-11-15]",
    "last_seen": "last seen (UTC, ISO 8601): last_seen:<2026-11-01",
    "age_days": "whole days since first seen: age_days:>30",
    "event": "a change event the service had: " + ", ".join(EVENT_TYPES),
    "tls": "true when the service spoke TLS, false for plaintext",
    "hostname": "the name the service was scanned by: hostname:es.example.cn, hostname:*.example.cn",
    "cert.name": "a name of the service's certificate (any case): cert.name:es.example.cn; *.example.cn ="
    " the wildcard name and every name under example.cn; cert.name:* = any certificate with a name",
    "cert.issuer": 'certificate issuer: cert.issuer:"CN=R11,O=Let\'s Encrypt,C=US" or cert.issuer:*encrypt*',
    "cert.sha256": "certificate SHA-256 (hex, any case; quoted with colons) or its start: cert.sha256:ab12*",
    "cert.expired": "true when the certificate had expired when scanned, false when it had not",
    "cert.self_signed": "true when the certificate is self-signed, false when an issuer signed it",
}
COLON_HINT = '; quote a value with colons, such as an IPv6 address: ip:"fd00::1"'
"""Said where a colon inside a value was read as a field's."""
FACET_FIELDS = ("protocol", "country", "severity", "pii", "software", "cert.issuer")


CRITICAL_RANK = SEVERITY_RANK["critical"]


def critical_services() -> ColumnElement[bool]:
    """The services whose latest state is critical: those `public_only` leaves out (an indexed range)."""
    return services.c.rank >= CRITICAL_RANK


def public_only(table: Table) -> ColumnElement[bool]:
    """The access rule for public viewers, in SQL: the rows of `table` (services, service_pii, findings or
    events) in the visible set. A service is out when its latest state is critical, and with it its PII
    categories and every stored finding and event of it; so is a finding or an event that was critical
    itself. Public reads AND this into their where-clause before they filter, count, facet, page or move
    a cursor."""
    if table is services or table is service_pii:  # service_pii holds its service's rank (written with it)
        # the facet indexes end with the rank: the filter reads no row
        return _filter_only(table.c.rank) < CRITICAL_RANK
    if table is not findings and table is not events:
        raise ValueError(f"no access rule for table {table.name!r}")
    critical = select(services.c.id).where(
        services.c.ip == table.c.ip, services.c.port == table.c.port, critical_services()
    )
    own = events.c.severity if table is events else findings.c.record["severity"].as_string()
    return and_(~critical.exists(), own.is_distinct_from("critical"))


def _wildcard(column: ColumnElement, value: str) -> Clause:
    """`column` LIKE `value` with `*` and `?` as its wildcards (the rest escaped)."""
    escaped = re.sub(r"([\\%_])", r"\\\1", value).replace("*", "%").replace("?", "_")
    return column.like(escaped, escape="\\")


class _filter_only(FunctionElement[int]):
    """An integer column that SQLite only filters by (`+ 0`), never starts from: it would think the
    condition narrow. PostgreSQL plans by its statistics, and starts a public page of the search order
    after the critical services (an index range) instead of reading past them."""

    type = Integer()
    inherit_cache = True


@compiles(_filter_only)
def _column(element: _filter_only, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_filter_only, "sqlite")
def _column_plus_zero(element: _filter_only, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} + 0)"


class QueryError(ValueError):
    """A query that cannot be run; `position` is the 0-based offset of the problem in the query."""

    def __init__(self, position: int, message: str) -> None:
        self.position = position
        super().__init__(f"query error at column {position + 1}: {message}")


Clause = ColumnElement[bool]
Value = tree.Word | tree.Phrase | tree.From | tree.To | tree.Range


def compile_query(query: str, *, now: datetime | None = None) -> Clause:
    """The where-clause over `services` for `query` (empty: every service). `now` is the time `age_days`
    counts from (default: the current time)."""
    if len(query) > MAX_LENGTH:
        raise QueryError(MAX_LENGTH, f"query longer than {MAX_LENGTH} characters")
    control = re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]", query)
    if control:
        raise QueryError(control.start(), f"control character or invalid text {control.group()!r}")
    if not query.strip():
        return true()
    _check_nesting(query)
    node = _parse(query)
    compiler = _Compiler(now or datetime.now(UTC))
    return compiler.node(node, None, 0)


_parse_lock = threading.Lock()  # luqum's parser and lexer are module-level PLY objects with state


def _parse(query: str) -> tree.Item:
    try:
        with _parse_lock:
            return parser.parse(query)
    except IllegalCharacterError as exc:
        found = re.search(r"at position (\d+)", str(exc))
        position = int(found.group(1)) if found else 0
        char = query[position : position + 1]
        raise QueryError(
            position, "unclosed quote" if char == '"' else f"illegal character {char!r}"
        ) from None
    except ParseError as exc:
        found = re.search(r"unexpected\s+'(.*)' at position (\d+)", str(exc), re.S)
        if found:
            position = int(found.group(2))
            unexpected = found.group(1) or query[position : position + 1]
            hint = COLON_HINT if unexpected == ":" else ""
            raise QueryError(position, f"unexpected {unexpected!r}{hint}") from None
        raise QueryError(
            len(query), "query ends too early (an operator or bracket without its other side)"
        ) from None
    except RecursionError:
        raise QueryError(0, "query nested too deeply") from None
    except ArithmeticError:  # luqum makes a Decimal of what follows `~`: in `0~.` that is no number
        raise QueryError(max(query.find("~"), 0), "`~` must be followed by a number") from None


def _check_nesting(query: str) -> None:
    """Refuse deep bracket nesting before the parser sees it."""
    depth, quoted = 0, False
    for position, char in enumerate(query):
        if char == '"' and (position == 0 or query[position - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise QueryError(position, f"brackets nested deeper than {MAX_DEPTH}")
        elif not quoted and char in ")]}":
            depth = max(depth - 1, 0)


class _Compiler:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.terms = 0
        self.driving = True

    def node(self, node: tree.Item, field: str | None, depth: int) -> Clause:
        if depth > MAX_DEPTH:
            raise QueryError(node.pos or 0, f"query nested deeper than {MAX_DEPTH}")
        down = depth + 1
        if isinstance(node, tree.AndOperation | tree.UnknownOperation):
            if any(_narrow(child) for child in node.children):
                return and_(*(self.filtering(child, field, down) for child in node.children))
            return and_(*(self.node(child, field, down) for child in node.children))
        if isinstance(node, tree.OrOperation):
            return or_(*(self.node(child, field, down) for child in node.children))
        if isinstance(node, tree.Not | tree.Prohibit):  # unknown (NULL) counts as not matching
            return self.node(node.a, field, down).is_not(true())
        if isinstance(node, tree.Plus | tree.Group | tree.FieldGroup):
            return self.node(node.children[0], field, down)
        if isinstance(node, tree.SearchField):
            if field is not None:
                raise QueryError(node.pos, f"field {node.name!r} inside field {field!r}{COLON_HINT}")
            name = node.name.lower()
            if name not in FIELDS:
                raise QueryError(node.pos, f"unknown field {node.name!r}; fields: {', '.join(FIELDS)}")
            return self.node(node.expr, name, down)
        if isinstance(node, Value):
            self.terms += 1
            if self.terms > MAX_TERMS:
                raise QueryError(node.pos, f"more than {MAX_TERMS} terms")
            if field is None:
                return self.free_text(node)
            return _FIELD_COMPILERS[field](self, node)
        return self.unsupported(node)

    def filtering(self, node: tree.Item, field: str | None, depth: int) -> Clause:
        """`node` compiled so that its sub-queries (pii, btc:*, event) only filter: SQLite guesses any
        `IN (SELECT ...)` yields ~25 rows and would start from it, not from the narrow sibling's index."""
        self.driving = False
        try:
            return self.node(node, field, depth)
        finally:
            self.driving = True

    def member(self, columns: tuple[ColumnElement, ...], query: Any) -> Clause:
        """`columns IN (query)`; when not driving, the columns are wrapped (+ 0, || '') so that the
        planner cannot look them up from the sub-query's rows."""
        if not self.driving:
            columns = tuple(c + 0 if c.type.python_type is int else c.concat("") for c in columns)
        return (columns[0] if len(columns) == 1 else tuple_(*columns)).in_(query)

    def unsupported(self, node: tree.Item) -> Clause:
        what = {
            tree.Regex: "regular expressions are",
            tree.Fuzzy: "fuzzy matching (~) is",
            tree.Proximity: "proximity (~) is",
            tree.Boost: "boosting (^) is",
        }.get(type(node), f"{type(node).__name__} is")
        raise QueryError(node.pos or 0, f"{what} not supported")

    # values --------------------------------------------------------------------------------------

    def text(self, node: tree.Item) -> str:
        """The value of a word or phrase (phrases without their quotes, escapes resolved)."""
        if isinstance(node, tree.Phrase):
            return re.sub(r"\\(.)", r"\1", node.value[1:-1])
        if isinstance(node, tree.Word):
            return re.sub(r"\\(.)", r"\1", node.value)
        raise QueryError(node.pos, "a range is not allowed here")

    def bounds(self, node: Value) -> tuple[tree.Item | None, bool, tree.Item | None, bool]:
        """(low, low included, high, high included) of a range node; None: open (also for `*`)."""
        if isinstance(node, tree.From):
            low, low_in, high, high_in = node.a, node.include, None, True
        elif isinstance(node, tree.To):
            low, low_in, high, high_in = None, True, node.a, node.include
        elif isinstance(node, tree.Range):
            low, low_in, high, high_in = node.low, node.include_low, node.high, node.include_high
        else:
            raise AssertionError(node)
        if isinstance(low, tree.Word) and low.value == "*":
            low = None
        if isinstance(high, tree.Word) and high.value == "*":
            high = None
        return low, low_in, high, high_in

    def ordered(self, node: Value, column: ColumnElement, convert: Callable[[tree.Item], object]) -> Clause:
        """Equality or range on an ordered column; `*` = has a value."""
        if not isinstance(node, tree.From | tree.To | tree.Range):
            if self.text(node) == "*":
                return column.is_not(None)
            return column == convert(node)
        low, low_in, high, high_in = self.bounds(node)
        clauses = [column.is_not(None)]
        if low is not None:
            value = convert(low)
            clauses.append(column >= value if low_in else column > value)
        if high is not None:
            value = convert(high)
            clauses.append(column <= value if high_in else column < value)
        return and_(*clauses)

    def number(self, node: tree.Item, span: tuple[int, int]) -> int:
        """A whole number (1e6 and 1_000 allowed) within `span` (lowest, highest), else a QueryError."""
        text = self.text(node).replace("_", "")
        try:
            value = float(text) if re.fullmatch(r"[0-9.eE+-]+", text) else math.nan
        except ValueError:
            value = math.nan
        if math.isnan(value) or (math.isfinite(value) and value != int(value)):
            raise QueryError(node.pos, f"{self.text(node)!r} is not a whole number")
        exact = int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else value
        if not span[0] <= exact <= span[1]:
            raise QueryError(node.pos, f"{self.text(node)!r} is out of range ({span[0]} to {span[1]})")
        return int(exact)

    def choice(self, node: Value, choices: Sequence[str], what: str) -> list[str]:
        """The choices a word names (wildcards allowed; `*` = all); unknown = error."""
        if isinstance(node, tree.From | tree.To | tree.Range):
            raise QueryError(node.pos, f"{what} takes a name, not a range")
        value = self.text(node).lower()
        chosen = [c for c in choices if fnmatch.fnmatchcase(c, value)]
        if not chosen:
            raise QueryError(node.pos, f"unknown {what} {value!r}; known: {', '.join(choices)}")
        return chosen

    def like(self, node: Value, column: ColumnElement, normalise: Callable[[str], str] | None) -> Clause:
        """Exact match, or a LIKE pattern for `*` and `?` (the rest escaped); no ranges. Values are
        normalised (e.g. str.lower) to the column's case; without `normalise` the case is ignored."""
        if isinstance(node, tree.From | tree.To | tree.Range):
            raise QueryError(node.pos, "this field takes a value, not a range")
        value = self.text(node)
        if value == "*":
            return column.is_not(None)
        if normalise is None:
            column, value = func.lower(column), value.lower()
        else:
            value = normalise(value)
        if isinstance(node, tree.Phrase) or not re.search(r"[*?]", value):
            return column == value
        return _wildcard(column, value)

    def boolean(self, node: Value, column: ColumnElement, *, strict: bool = False) -> Clause:
        """true or false; unknown (NULL) counts as false, unless `strict` (it then matches neither)."""
        value = self.text(node).lower() if isinstance(node, tree.Word | tree.Phrase) else ""
        if value not in ("true", "false"):
            raise QueryError(node.pos, "expected true or false")
        if value == "true":
            return column.is_(True)
        return column.is_(False) if strict else or_(column.is_(False), column.is_(None))

    def when(self, node: tree.Item, *, end: bool) -> str:
        """An ISO 8601 date or time as stored (UTC, ...Z). A bare date stands for its start, a time for its
        second; with `end`, the start of the next day (second)."""
        text = self.text(node)
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                start, unit = datetime.fromisoformat(f"{text}T00:00:00"), timedelta(days=1)
            else:
                start, unit = datetime.fromisoformat(text).replace(microsecond=0), timedelta(seconds=1)
        except ValueError:
            raise QueryError(node.pos, f"{text!r} is not an ISO 8601 date or time (2026-11-01)") from None
        try:
            if start.tzinfo is not None:
                start = start.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise QueryError(node.pos, f"{text!r} is out of range (years 0001 to 9999 in UTC)") from None
        if not end:
            return _stored(start)
        try:
            return _stored(start + unit)
        except OverflowError:
            return AFTER_ALL_TIMES

    def moment(self, node: Value, column: ColumnElement) -> Clause:
        if not isinstance(node, tree.From | tree.To | tree.Range):
            if self.text(node) == "*":
                return column.is_not(None)
            return and_(column >= self.when(node, end=False), column < self.when(node, end=True))
        low, low_in, high, high_in = self.bounds(node)
        clauses = [column.is_not(None)]
        if low is not None:  # after a day = from the next day; from a day = from its start
            clauses.append(column >= self.when(low, end=not low_in))
        if high is not None:  # up to a day = before the next day; before a day = before its start
            clauses.append(column < self.when(high, end=high_in))
        return and_(*clauses)

    # fields --------------------------------------------------------------------------------------

    def ip(self, node: Value) -> Clause:
        column = services.c.ip_key
        if isinstance(node, tree.From | tree.To | tree.Range):
            return self.ordered(node, column, self.address)
        text = self.text(node)
        if text == "*":
            return true()
        if "/" in text:
            try:
                network = parse_network(text)
            except ValueError:
                raise QueryError(node.pos, f"{text!r} is not an IP network") from None
            return column.between(*network_keys(network))
        if "-" in text:
            first, _, last = text.partition("-")
            low, high = self.address(node, first), self.address(node, last)
            if low > high:
                raise QueryError(node.pos, f"{text!r}: the range ends before it starts")
            return column.between(low, high)
        if "*" in text or "?" in text:  # no address holds one: a wildcard, quoted too (as colons want)
            return _wildcard(services.c.ip, text.lower())  # addresses are written in lower case
        return column == self.address(node)

    def address(self, node: tree.Item, text: str | None = None) -> str:
        """The order key of an IPv4 or IPv6 address (any spelling)."""
        text = self.text(node) if text is None else text
        try:
            return address_key(text)
        except ValueError:
            raise QueryError(node.pos, f"{text!r} is not an IP address") from None

    def severity(self, node: Value) -> Clause:
        def rank(item: tree.Item) -> int:
            name = self.text(item).lower()
            if name not in SEVERITY_RANK:
                raise QueryError(item.pos, f"unknown severity {name!r}; known: {', '.join(SEVERITIES)}")
            return SEVERITY_RANK[name]

        if isinstance(node, tree.From | tree.To | tree.Range):
            return and_(services.c.rank >= 0, self.ordered(node, services.c.rank, rank))
        if self.text(node) == "*":
            return services.c.severity.is_not(None)
        return services.c.severity.in_(self.choice(node, SEVERITIES, "severity"))

    def asn(self, node: Value) -> Clause:
        def number(item: tree.Item) -> int:
            text = self.text(item)
            if text[:2].upper() == "AS":
                return self.number(tree.Word(text[2:], pos=item.pos), BIGINT)
            return self.number(item, BIGINT)

        return self.ordered(node, services.c.asn, number)

    def collections(self, node: Value) -> Clause:
        if isinstance(node, tree.From | tree.To | tree.Range):
            return self.ordered(node, services.c.collections, lambda item: self.number(item, INTEGER))
        text = self.text(node)
        if text == "*":
            return services.c.collections > 0
        if re.fullmatch(r"\d+", text):
            return services.c.collections == self.number(node, INTEGER)
        return self.match(node, "collections")

    def age_days(self, node: Value) -> Clause:
        """Whole days since first seen: age a >= n  <=>  first_seen <= now - n days. Ages go back to the
        year 1."""
        now = self.now.astimezone(UTC).replace(tzinfo=None)
        oldest = (now - datetime.min).days - 1

        def age(item: tree.Item) -> int:
            return self.number(item, (0, oldest))

        def day(n: int) -> str:
            return _stored(now - timedelta(days=n))  # n <= oldest + 1: still in the year 1

        column = services.c.first_seen
        if not isinstance(node, tree.From | tree.To | tree.Range):
            if self.text(node) == "*":
                return true()
            n = age(node)
            return and_(column <= day(n), column > day(n + 1))
        low, low_in, high, high_in = self.bounds(node)
        clauses = []
        if low is not None:
            n = age(low) + (0 if low_in else 1)
            clauses.append(column <= day(n))
        if high is not None:
            n = age(high) + (1 if high_in else 0)
            clauses.append(column > day(n))
        return and_(true(), *clauses)

    def pii(self, node: Value) -> Clause:
        query = select(service_pii.c.service_id)
        if self.text(node) != "*":
            query = query.where(service_pii.c.category.in_(self.choice(node, PII_CATEGORIES, "PII category")))
        return self.member((services.c.id,), query)

    def btc(self, node: Value) -> Clause:
        if isinstance(node, tree.From | tree.To | tree.Range):
            raise QueryError(node.pos, "btc takes an address, not a range")
        query = select(service_btc.c.service_id)
        if self.text(node) == "*":
            return self.member((services.c.id,), query)
        return services.c.id.in_(query.where(self.like(node, service_btc.c.address, str)))

    def cert_name(self, node: Value) -> Clause:
        """A certificate name: exact (any case); `*.example.cn` = the names ending in `.example.cn` (the
        wildcard name among them), `example.*` = the names starting with `example.`, both index ranges;
        other wildcards as LIKE patterns."""
        if isinstance(node, tree.From | tree.To | tree.Range):
            raise QueryError(node.pos, "cert.name takes a name, not a range")
        query = select(service_cert_names.c.service_id)
        value = self.text(node).lower()
        if value == "*":
            return self.member((services.c.id,), query)
        names = service_cert_names.c
        head, tail = value[:1], value[1:]
        if isinstance(node, tree.Phrase) or not re.search(r"[*?]", value):
            matched = names.name == value
        elif head == "*" and not re.search(r"[*?]", tail):
            matched = names_ending(tail)
        elif value.endswith("*") and not re.search(r"[*?]", value[:-1]):
            matched = _prefixed(names.name, value[:-1])
        else:
            matched = self.like(node, names.name, str.lower)
        return services.c.id.in_(query.where(matched))

    def cert_sha256(self, node: Value) -> Clause:
        """A certificate fingerprint, or its start (`ab12*`): hex in any case, colons allowed."""
        if isinstance(node, tree.From | tree.To | tree.Range):
            raise QueryError(node.pos, "cert.sha256 takes a fingerprint, not a range")
        text = self.text(node)
        column = services.c.cert_sha256
        if text == "*":
            return column.is_not(None)
        found = re.fullmatch(r"([0-9a-f]{1,64})(\*?)", text.replace(":", "").lower())
        if not found or (not found.group(2) and len(found.group(1)) != 64):
            raise QueryError(
                node.pos, f"{text!r} is not a SHA-256 fingerprint (64 hex digits) or its start (ab12*)"
            )
        digits, prefix = found.groups()
        return _prefixed(column, digits) if prefix else column == digits

    def event(self, node: Value) -> Clause:
        query = select(events.c.ip, events.c.port)
        if self.text(node) != "*":
            query = query.where(events.c.type.in_(self.choice(node, EVENT_TYPES, "event type")))
        return self.member((services.c.ip, services.c.port), query)

    def free_text(self, node: Value) -> Clause:
        if isinstance(node, tree.From | tree.To | tree.Range):
            raise QueryError(node.pos, "a range needs a field, e.g. rows:>1000")
        if isinstance(node, tree.Word) and node.value == "*":
            return true()
        return self.match(node, None)

    def match(self, node: Value, column: str | None) -> Clause:
        """Full-text match of one word or phrase (a trailing `*`: prefix search), optionally restricted to
        one text column."""
        text = self.text(node)
        prefix = isinstance(node, tree.Word) and text.endswith("*")
        words = text.rstrip("*") if prefix else text
        if not re.search(r"\w", words):
            return false()  # nothing a full-text index holds
        return TextMatch(words, prefix, column)


_NARROW = {
    *("ip", "port", "software", "country", "asn", "org", "btc", "first_seen", "last_seen", "age_days"),
    *("hostname", "cert.name", "cert.issuer", "cert.sha256"),
}
"""Fields whose values (other than `*`) select few services through an index of their own."""


def _narrow(node: tree.Item) -> bool:
    """Whether `node` (an operand of AND) is a narrow condition: a field of _NARROW with a value."""
    if isinstance(node, tree.Plus | tree.Group):
        return _narrow(node.children[0])
    return (
        isinstance(node, tree.SearchField)
        and node.name.lower() in _NARROW
        and not (isinstance(node.expr, tree.Word) and node.expr.value == "*")
    )


def _text_field(
    column: ColumnElement, normalise: Callable[[str], str] | None = None
) -> Callable[[_Compiler, Value], Clause]:
    return lambda compiler, node: compiler.like(node, column, normalise)


def names_ending(suffix: str) -> Clause:
    """The rows of service_cert_names whose name ends with `suffix` (in lower case): a range of the
    names backwards."""
    return _prefixed(service_cert_names.c.name_reversed, suffix[::-1])


def certified_for(domain: str) -> Clause:
    """The services whose certificate names `domain` (in lower case) or a name under it (a wildcard
    name among them)."""
    names = service_cert_names.c
    under = or_(names.name == domain, names_ending(f".{domain}"))
    return services.c.id.in_(select(names.service_id).where(under))


def _prefixed(column: ColumnElement, prefix: str) -> Clause:
    """`column` starts with `prefix`, as a range of code points: what an index finds (the column in
    code point order: schema.Key); no LIKE, so no character of `prefix` is a wildcard."""
    end = prefix
    while end:  # the least text after every text starting with `prefix`: its last character, one up
        code = ord(end[-1]) + 1
        if code <= 0x10FFFF:
            end = end[:-1] + chr(0xE000 if code == 0xD800 else code)  # past the surrogates
            break
        end = end[:-1]
    low = column >= prefix
    return and_(low, column < end) if end else low


def _stored(moment: datetime) -> str:
    """A naive UTC time as the index stores times (the year always in four digits)."""
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"


def _number_field(column: ColumnElement) -> Callable[[_Compiler, Value], Clause]:
    """A number column: values within what the column holds (INTEGER or BIGINT)."""
    span = BIGINT if isinstance(column.type, BigInteger) else INTEGER
    return lambda compiler, node: compiler.ordered(node, column, lambda item: compiler.number(item, span))


def _boolean_field(column: ColumnElement, *, strict: bool = False) -> Callable[[_Compiler, Value], Clause]:
    return lambda compiler, node: compiler.boolean(node, column, strict=strict)


def _auth(compiler: _Compiler, node: Value) -> Clause:
    return services.c.auth.in_(compiler.choice(node, ("none", "required", "unknown"), "auth"))


_FIELD_COMPILERS: dict[str, Callable[[_Compiler, Value], Clause]] = {
    "ip": _Compiler.ip,
    "port": _number_field(services.c.port),
    "protocol": _text_field(services.c.protocol, str.lower),
    "software": _text_field(services.c.software),
    "version": _text_field(services.c.version),
    "auth": _auth,
    "exposed": _boolean_field(services.c.exposed),
    "severity": _Compiler.severity,
    "pii": _Compiler.pii,
    "rows": _number_field(services.c.rows),
    "size_bytes": _number_field(services.c.size_bytes),
    "collections": _Compiler.collections,
    "infected": _boolean_field(services.c.infected),
    "btc": _Compiler.btc,
    "country": _text_field(services.c.country, str.upper),
    "asn": _Compiler.asn,
    "org": _text_field(services.c.org),
    "first_seen": lambda compiler, node: compiler.moment(node, services.c.first_seen),
    "last_seen": lambda compiler, node: compiler.moment(node, services.c.last_seen),
    "age_days": _Compiler.age_days,
    "event": _Compiler.event,
    "tls": _boolean_field(services.c.tls),
    "hostname": _text_field(services.c.hostname, str.lower),
    "cert.name": _Compiler.cert_name,
    "cert.issuer": _text_field(services.c.cert_issuer),
    "cert.sha256": _Compiler.cert_sha256,
    "cert.expired": _boolean_field(services.c.cert_expired, strict=True),
    "cert.self_signed": _boolean_field(services.c.cert_self_signed, strict=True),
}
assert set(_FIELD_COMPILERS) == set(FIELDS)
