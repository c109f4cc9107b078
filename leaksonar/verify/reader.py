"""`leaksonar verify FILE`: read a leak sample (bounded) and show what `consistency` makes of it.

The one module of `assess` that reads a file: the sample a user hands over. Formats are told by content, not
by name: gzip by its magic bytes; then a JSON array of objects, a JSON object whose first array holds them,
JSON lines, or CSV with a header row (delimiter sniffed). Text is UTF-8, UTF-16 with a BOM, or GB18030.
Nested JSON objects become dotted column names. At most `limit` rows are read (the report says when the
file has more), lines and JSON records are capped in size, and so are the number of columns and the nesting of
JSON (checked on the text before it is parsed: a hostile file cannot exhaust the parser's recursion). An
unreadable file is an `InputError` naming the file and the line, never quoting it.

Nothing raw leaves: output holds counts, rates, date ranges and masked examples; a JSON key that is itself an
identifier is masked, and a CSV whose first row holds identifiers is read as having no header row.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from leaksonar.assess.masks import mask
from leaksonar.assess.pii import MAX_CHARS, MAX_DEPTH, leaf_text
from leaksonar.assess.validators import classify
from leaksonar.inputs import InputError
from leaksonar.terminal import add_row, plain
from leaksonar.verify.consistency import Cell, Check, ColumnReport, Report, check_table

MAX_COLUMNS = 500
"""Columns kept (the rest are left out, and the report says so)."""
MAX_LINE = 1 << 20
"""Characters of one CSV or JSON line."""
MAX_RECORD = 16 << 20
"""Characters of one JSON record."""
SNIFF = 64 << 10
"""Bytes looked at to tell encoding and format."""
MAX_NESTING = 64
"""Levels of JSON arrays and objects (a file nested deeper is refused)."""

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 16
_WHITESPACE = re.compile(r"\s*")
_STRUCTURE = re.compile(r'[\[\]{}"]')
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
"""The rest of a JSON string: up to its closing quote (or a backslash that ends the text)."""
_DECODER = json.JSONDecoder()
_LINES_EXTENSIONS = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
_VERDICT_STYLE = {"consistent": "bold green", "inconsistent": "bold red", "insufficient data": "yellow"}
_STATUS_STYLE = {"pass": "green", "fail": "bold red", "too few": "yellow"}


TRUNCATED = "truncated gzip: the compressed data ends early; the rows up to there were read"
"""The note (and warning) for a compressed file cut short, a download or copy that did not finish."""


class VerifyError(ValueError):
    """The file cannot be read as a leak sample: what is wrong and on which line (`read_leak` makes it an
    InputError naming the file)."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.line = reason, line


@dataclass(slots=True)
class LeakFile:
    """The cells read from a sample file, and how it was read."""

    path: Path
    kind: str
    """``CSV, delimiter ','``, ``JSON array``, ``JSON lines`` ..."""
    compressed: bool
    columns: dict[str, list[Cell]] = field(default_factory=dict)
    rows: int = 0
    more: bool = False
    """The file holds more rows than were read."""
    cut: bool = False
    """The compressed data ends early (a truncated download)."""
    wide: bool = False
    """Columns past `MAX_COLUMNS` were left out."""
    notes: list[str] = field(default_factory=list)

    def add(self, row: dict[str, Cell]) -> None:
        """One row; columns it is the first to have are empty in earlier rows."""
        for name, value in row.items():
            column = self.columns.get(name)
            if column is None:
                if len(self.columns) == MAX_COLUMNS:
                    self.wide = True
                    continue
                column = self.columns[name] = [None] * self.rows
            column.append(value)
        self.rows += 1
        for column in self.columns.values():
            if len(column) < self.rows:
                column.append(None)


# --- opening --------------------------------------------------------------------------------------------


class _Gzip(gzip.GzipFile):
    """A gzip file whose compressed data may end early (a download or copy that did not finish): it ends
    there, after every byte that could be decompressed, and `cut` says so."""

    cut = False

    def read(self, size: int | None = -1) -> bytes:
        return self._until_cut(super().read, size)

    def read1(self, size: int = -1) -> bytes:
        return self._until_cut(super().read1, size)

    def _until_cut(self, read: Callable[[int], bytes], size: int | None) -> bytes:
        try:
            return read(-1 if size is None else size)
        except EOFError:
            self.cut = True
            return b""


def _binary(path: Path, compressed: bool) -> io.BufferedIOBase:
    return _Gzip(path, "rb") if compressed else path.open("rb")


def _head(stream: io.BufferedIOBase) -> bytes:
    """The first `SNIFF` bytes (fewer if the file is shorter or its compressed data ends early)."""
    head = b""
    while len(head) < SNIFF and (chunk := stream.read1(SNIFF - len(head))):
        head += chunk
    return head


def _encoding(head: bytes) -> str:
    """UTF-16 (with a BOM), UTF-8, or GB18030 for Chinese text that is not UTF-8."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\0" in head:
        raise VerifyError("not CSV, JSON or JSON lines (binary data)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8-sig"


def _kind(text: str, name: str) -> str:
    """Format: "json", "jsonl" or "csv" by the first characters of the text (and the name, for JSON lines)."""
    start = text.lstrip()[:1]
    if start == "[":
        return "json"
    if start != "{":
        return "csv"
    if name.lower().endswith(_LINES_EXTENSIONS):
        return "jsonl"
    first, _, rest = text.lstrip().partition("\n")
    _Nesting().feed(first)  # before the parser recurses into it
    try:
        record = json.loads(first)
    except ValueError:
        return "json"  # an object spread over lines
    if rest.strip():
        return "jsonl"
    return "json" if any(isinstance(value, list) for value in record.values()) else "jsonl"


# --- CSV ------------------------------------------------------------------------------------------------


def _lines(stream: IO[str]) -> Iterator[str]:
    number = 0
    while line := stream.readline(MAX_LINE):
        number += 1
        if len(line) == MAX_LINE and not line.endswith(("\n", "\r")):
            raise VerifyError(f"longer than {MAX_LINE:,} characters", number)
        if "\0" in line:
            raise VerifyError("not CSV, JSON or JSON lines (binary data)", number)
        yield line


def _dialect(head: str) -> type[csv.Dialect] | csv.Dialect:
    sample = head[: head.rfind("\n") + 1] or head
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _header(cells: list[str]) -> list[str]:
    """Column names: blank ones numbered, repeated ones suffixed."""
    names: list[str] = []
    for number, cell in enumerate(cells, 1):
        name = cell.strip() or f"column_{number}"
        names.append(f"{name}_{number}" if name in names else name)
    return names


def _csv_rows(stream: IO[str], head: str, leak: LeakFile) -> Iterator[dict[str, Cell]]:
    dialect = _dialect(head)
    leak.kind = f"CSV, delimiter {dialect.delimiter!r}"
    reader = csv.reader(_lines(stream), dialect)
    try:
        first = next((cells for cells in reader if cells), [])
        if any(classify(cell.strip()) for cell in first):
            leak.notes.append("the first row holds data, not column names: columns are numbered")
            names = [f"column_{number}" for number in range(1, len(first) + 1)]
            yield dict(zip(names, map(leaf_text, first), strict=True))
        else:
            names = _header(first)
        for cells in reader:
            if cells:
                yield dict(zip(names, map(leaf_text, cells), strict=False))
    except csv.Error as exc:  # its messages name no content ("field larger than field limit (131072)")
        raise VerifyError(f"malformed CSV ({exc})", reader.line_num) from None


# --- JSON -----------------------------------------------------------------------------------------------


class _Nesting:
    """How deep JSON text fed chunk by chunk nests arrays and objects (strings and their escapes skipped);
    VerifyError, with the line, past MAX_NESTING levels."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False
        self.lines = 0

    def feed(self, text: str) -> None:
        at = self._past_string(text, 0) if self.in_string else 0
        while found := _STRUCTURE.search(text, at):
            char, at = found[0], found.end()
            if char == '"':
                self.in_string = True
                at = self._past_string(text, at)
            elif char in "[{":
                self.depth += 1
                if self.depth > MAX_NESTING:
                    line = self.lines + text.count("\n", 0, at) + 1
                    raise VerifyError(f"JSON nested deeper than {MAX_NESTING} levels", line)
            else:
                self.depth -= 1
        self.lines += text.count("\n")

    def _past_string(self, text: str, at: int) -> int:
        """Where the string being read ends in `text`, past its quote (the end of `text` if it goes on)."""
        if self.escaped:
            self.escaped, at = False, at + 1
        end = _STRING_REST.match(text, at).end()  # type: ignore[union-attr]
        if end < len(text) and text[end] == '"':
            self.in_string = False
            return end + 1
        self.escaped = end < len(text)  # a backslash ends the text: it escapes the next one's first character
        return len(text)


class _JsonReader:
    """JSON values read one at a time from a text stream, in bounded chunks whose nesting is checked before
    they are parsed."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.buffer = ""
        self.at = 0
        self.eof = False
        self.nesting = _Nesting()
        self.lines = 0
        """Lines before the buffer."""

    def _fill(self) -> None:
        chunk = self.stream.read(max(_CHUNK, len(self.buffer) - self.at))
        self.nesting.feed(chunk)
        self.eof = not chunk
        self.lines += self.buffer.count("\n", 0, self.at)
        self.buffer = self.buffer[self.at :] + chunk
        self.at = 0

    def line(self, at: int | None = None) -> int:
        """The line of position `at` of the buffer (default: where reading is)."""
        return self.lines + self.buffer.count("\n", 0, self.at if at is None else at) + 1

    def peek(self) -> str:
        """The next character that is not white space ("" at the end)."""
        while True:
            self.at = _WHITESPACE.match(self.buffer, self.at).end()  # type: ignore[union-attr]
            if self.at < len(self.buffer) or self.eof:
                return self.buffer[self.at : self.at + 1]
            self._fill()

    def take(self, expected: str) -> str:
        """The next character, one of `expected`."""
        char = self.peek()
        if not char or char not in expected:
            raise VerifyError(f"malformed JSON: expected {' or '.join(map(repr, expected))}", self.line())
        self.at += 1
        return char

    def value(self) -> Any:
        """The next value (a number at the end of the buffer is read again once more text is in)."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.at)
                if end < len(self.buffer) or self.eof:
                    self.at = end
                    return value
            except json.JSONDecodeError as exc:
                if self.eof:
                    raise VerifyError(f"malformed JSON: {exc.msg}", self.line(exc.pos)) from None
            except ValueError:  # the one other refusal of the decoder: an integer too long to convert
                limit = sys.get_int_max_str_digits()
                raise VerifyError(f"a JSON number longer than {limit:,} digits", self.line()) from None
            if len(self.buffer) - self.at > MAX_RECORD:
                raise VerifyError(f"a JSON record is larger than {MAX_RECORD:,} characters", self.line())
            self._fill()

    def array(self) -> Iterator[Any]:
        """The items of the array that starts here."""
        self.take("[")
        if self.peek() == "]":
            return
        while True:
            yield self.value()
            if self.take(",]") == "]":
                return

    def wrapped(self) -> Iterator[Any]:
        """The items of the first array in the object that starts here."""
        self.take("{")
        while self.peek() != "}":
            self.value()
            self.take(":")
            if self.peek() == "[":
                yield from self.array()
                return
            self.value()
            if self.take(",}") == "}":
                break
        raise VerifyError("the JSON object holds no array of records", self.line())

    def sequence(self) -> Iterator[Any]:
        """Values one after the other (JSON lines)."""
        while self.peek():
            yield self.value()


@lru_cache(maxsize=4096)
def _key(key: str) -> str:
    """A JSON key as a column name; a key that is itself an identifier is masked."""
    category = classify(key)
    return mask(category, key) if category else key


def _flat(record: dict[str, Any], prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Cell]]:
    """Leaves of a record by dotted path; lists, and objects nested too deep, as JSON text."""
    for key, value in record.items():
        name = prefix + _key(str(key))
        if isinstance(value, dict) and value and depth < MAX_DEPTH:
            yield from _flat(value, f"{name}.", depth + 1)
        elif isinstance(value, dict | list):
            yield name, leaf_text(json.dumps(value, ensure_ascii=False)[:MAX_CHARS]) if value else None
        else:
            yield name, leaf_text(value)


def _json_rows(stream: IO[str], kind: str, leak: LeakFile) -> Iterator[dict[str, Cell]]:
    reader = _JsonReader(stream)
    if kind == "jsonl":
        leak.kind, items = "JSON lines", reader.sequence()
    elif reader.peek() == "[":
        leak.kind, items = "JSON array", reader.array()
    else:
        leak.kind, items = "JSON object", reader.wrapped()
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise VerifyError(f"JSON record {number:,} is not an object", reader.line())
        yield dict(_flat(item))


# --- reading --------------------------------------------------------------------------------------------


def _collect(leak: LeakFile, rows: Iterator[dict[str, Cell]], limit: int, cut: Callable[[], bool]) -> None:
    """Up to `limit` rows into `leak`, noting whether there are more. In a file cut short (`cut()`), the
    last row read (the cut may have ended it early) and a record the cut broke are left out."""
    last: dict[str, Cell] | None = None
    try:
        for row in rows:
            if last is not None:
                leak.add(last)
            if leak.rows == limit:
                leak.more = True
                leak.notes.append(f"read the first {limit:,} rows; the file has more")
                return
            last = row
    except VerifyError:
        if not cut():
            raise
    if cut():
        leak.cut = True
        leak.notes.append(TRUNCATED)
    elif last is not None:
        leak.add(last)


def _read(path: Path, limit: int) -> LeakFile:
    with path.open("rb") as probe:
        compressed = probe.read(2) == _GZIP_MAGIC
    with _binary(path, compressed) as stream:
        head = _head(stream)
    if not head.strip():
        raise VerifyError("no data (the compressed file is empty or cut short)" if compressed else "empty")
    encoding = _encoding(head)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)
    kind = _kind(text, path.name)
    leak = LeakFile(path, kind, compressed)
    with (
        _binary(path, compressed) as binary,
        io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="") as stream,
    ):
        rows = _csv_rows(stream, text, leak) if kind == "csv" else _json_rows(stream, kind, leak)
        _collect(leak, rows, limit, lambda: getattr(binary, "cut", False))
    if not leak.rows:
        raise VerifyError("no rows (the compressed data ends early)" if leak.cut else "no rows")
    if not leak.columns:
        raise VerifyError("no columns (every record is empty)")
    if leak.wide:
        leak.notes.append(f"only the first {MAX_COLUMNS} columns were read")
    return leak


def read_leak(path: Path, limit: int) -> LeakFile:
    """The first `limit` rows of a sample file. Raises InputError naming the file, the line and what is
    wrong."""
    try:
        return _read(path, limit)
    except VerifyError as exc:
        raise InputError(path, exc.line, exc.reason) from None
    except (OSError, zlib.error, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InputError(path, None, f"cannot read: {reason}") from None


def verify(path: Path, limit: int) -> tuple[LeakFile, Report]:
    """Read the first `limit` rows of a sample and check them."""
    leak = read_leak(path, limit)
    return leak, check_table(leak.columns, date.today())


# --- output ---------------------------------------------------------------------------------------------


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _column_record(column: ColumnReport, rows: int) -> dict[str, Any]:
    dates = column.dates
    span = dates and {"min": dates.first.isoformat(), "max": dates.last.isoformat(), "future": dates.future}
    return {
        "name": column.name,
        "category": column.category,
        "non_empty": column.filled,
        "empty_rate": _share(column.empty, rows),
        "distinct_rate": _share(column.distinct, column.filled),
        "valid": column.valid,
        "valid_rate": None if column.valid is None else _share(column.valid, column.filled),
        "example": column.example,
        "dates": span,
    }


def _check_record(check: Check) -> dict[str, Any]:
    return {
        "kind": check.kind,
        "label": check.label,
        "columns": list(check.columns),
        "compared": check.compared,
        "mismatches": check.mismatches,
        "rate": round(check.rate, 4),
        "limit": check.limit,
        "status": check.status,
        "text": check.sentence(),
    }


def report_record(leak: LeakFile, report: Report) -> dict[str, Any]:
    """The report as one JSON object."""
    return {
        "file": str(leak.path),
        "format": leak.kind,
        "compressed": leak.compressed,
        "rows": report.rows,
        "more_rows": leak.more,
        "truncated": leak.cut,
        "columns": [_column_record(c, report.rows) for c in report.columns],
        "checks": [_check_record(c) for c in report.checks],
        "verdict": report.verdict,
        "reasons": list(report.reasons),
        "notes": [*leak.notes, *report.notes],
    }


def _rate_of(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def _dates_text(column: ColumnReport) -> Text:
    dates = column.dates
    if dates is None:
        return plain("")
    future = (f" {dates.future:,} future", "bold red") if dates.future else ""
    return plain(f"{dates.first} .. {dates.last}", future)


def _columns_table(report: Report) -> Table:
    table = Table(title=plain("columns", style="table.title"), title_justify="left")
    for name, justify in (
        ("column", "left"),
        ("category", "left"),
        ("non-empty", "right"),
        ("empty", "right"),
        ("distinct", "right"),
        ("valid", "right"),
        ("dates", "left"),
        ("example", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in report.columns:
        valid = "" if c.valid is None else f"{_rate_of(c.valid, c.filled)} of {c.filled:,}"
        add_row(
            table,
            c.name,
            c.category or "-",
            f"{c.filled:,}",
            _rate_of(c.empty, report.rows),
            _rate_of(c.distinct, c.filled),
            valid,
            _dates_text(c),
            c.example or "",
        )
    return table


def _checks_table(report: Report) -> Table:
    table = Table(title=plain("checks", style="table.title"), title_justify="left")
    for name, justify in (
        ("check", "left"),
        ("compared", "right"),
        ("mismatches", "right"),
        ("rate", "right"),
        ("limit", "right"),
        ("result", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in report.checks:
        add_row(
            table,
            c.label,
            f"{c.compared:,}",
            f"{c.mismatches:,}",
            _rate_of(c.mismatches, c.compared),
            f"{c.limit:.0%}",
            plain(c.status, style=_STATUS_STYLE[c.status]),
        )
    return table


def renderables(leak: LeakFile, report: Report) -> list[RenderableType]:
    """What `verify` prints: the file, the columns and checks tables, the verdict, its reasons, notes; every
    text (column names, examples, the path) shown literally with `plain`."""
    compressed = ", gzip" if leak.compressed else ""
    parts: list[RenderableType] = [
        plain(f"{leak.path}: {leak.kind}{compressed}; {report.rows:,} rows, {len(report.columns)} columns"),
        _columns_table(report),
        _checks_table(report),
        plain("verdict: ", (report.verdict, _VERDICT_STYLE[report.verdict])),
    ]
    parts += [plain(f"  - {reason}") for reason in report.reasons]
    notes = [*leak.notes, *report.notes]
    if notes:
        parts.append(plain("notes:"))
        parts += [plain(f"  - {note}") for note in notes]
    return parts
