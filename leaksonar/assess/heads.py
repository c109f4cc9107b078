"""Rows read from the head of a small text file, for the personal-data detector (`assess.pii`).

A storage inspection reads at most `MAX_HEAD` bytes of a small CSV, TSV, JSON, JSON-lines, SQL or TXT file;
`head_rows` turns them into documents as a database's sample would be: CSV columns named by the header
row, JSON objects (an array's items, or the first list of objects an object holds), SQL ``INSERT`` rows
(columns from the statement or the dump's ``CREATE TABLE``, ``table.column``) and ``COPY`` blocks, and
the lines of any other text. The head is the server's: binary, cut, badly encoded or nested without end,
it yields fewer rows, never an error; rows, columns and characters are capped.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from leaksonar.assess.filenames import file_name
from leaksonar.model import FILE_HEAD, Sample

MAX_HEAD = FILE_HEAD
"""Bytes of a head read (`model.FILE_HEAD`, what a file store reads)."""
MAX_ROWS = 200
"""Rows returned per head."""
MAX_COLUMNS = 100
"""Columns kept per row."""
MAX_CELL = 1024
"""Characters kept per value."""
_MAX_LINES = 5000
_BINARY_PROBE = 1024
_DELIMITERS = ",;\t|"
_JSON = frozenset({"json", "jsonl", "ndjson", "geojson"})
_SQL = frozenset({"sql", "psql", "dump"})
_TABLES = frozenset({"csv", "tsv"})
_DELIMITED = _TABLES | {"txt", "dat", "log", ""}

_IDENTIFIER = r"[`\"\[]?([\w$]{1,64})[`\"\]]?"
_TABLE = rf"(?:{_IDENTIFIER}\.)?{_IDENTIFIER}"
_CREATE = re.compile(rf"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_TABLE}\s*\(", re.I)
_MAX_CREATE = 8000
"""Characters of a CREATE TABLE statement read for its columns."""
_MAX_STATEMENTS = 200
"""CREATE TABLE and COPY statements read per head."""
_COLUMN = re.compile(rf"^\s*{_IDENTIFIER}\s+\w", re.M)
_NOT_COLUMN = frozenset(
    {"primary", "key", "unique", "constraint", "index", "foreign", "check", "fulltext", "spatial"}
)
_INSERT = re.compile(
    rf"INSERT\s+(?:IGNORE\s+)?INTO\s+{_TABLE}\s*(?:\(([^()]{{0,4000}})\))?\s*VALUES\s*", re.I
)
_TUPLE_VALUE = re.compile(r"\s*('(?:[^'\\]|\\.|'')*'|[^,()']*)\s*([,)])", re.S)
_COPY = re.compile(rf"^COPY\s+{_TABLE}\s*\(([^()]{{0,4000}})\)\s+FROM\s+stdin;\n", re.I | re.M)
_NAMES = re.compile(r"[`\"\[]?([\w$]{1,64})[`\"\]]?")


def decode(head: bytes) -> str | None:
    """The head as text: UTF-8 (a BOM dropped), else GB 18030, else UTF-8 with replacements; None when it
    is binary (NUL bytes near its start). A character cut at the end is dropped."""
    head = head[:MAX_HEAD]
    if b"\x00" in head[:_BINARY_PROBE]:
        return None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return head.decode(encoding)
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 4:  # cut inside the last character
                try:
                    return head[: exc.start].decode(encoding)
                except UnicodeDecodeError:
                    pass
    return head.decode("utf-8", "replace")


def _cell(value: Any) -> Any:
    return value[:MAX_CELL] if isinstance(value, str) else value


def _row(columns: list[str], values: list[Any]) -> dict[str, Any]:
    return {c: _cell(v) for c, v in islice(zip(columns, values, strict=False), MAX_COLUMNS)}


def _lines(text: str) -> list[str]:
    """The complete lines of `text` (a cut last line is dropped), at most `_MAX_LINES`."""
    lines = text.split("\n", _MAX_LINES)[:_MAX_LINES]
    return lines[:-1] if len(lines) > 1 else lines


def _delimiter(header: str) -> str | None:
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


def _delimited(text: str, table: bool) -> list[dict[str, Any]]:
    """CSV/TSV rows named by the header row; another text without a delimiter, one ``line`` per line."""
    lines = [line.rstrip("\r") for line in _lines(text) if line.strip()]
    if not lines:
        return []
    delimiter = _delimiter(lines[0][: MAX_CELL * 4]) or ("," if table else None)
    if delimiter is None:
        return [{"line": line[:MAX_CELL]} for line in lines[:MAX_ROWS]]
    reader = csv.reader((line[: MAX_CELL * MAX_COLUMNS] for line in lines), delimiter=delimiter)
    try:
        header = [h.strip()[:200] or f"column{i}" for i, h in enumerate(next(reader)[:MAX_COLUMNS])]
        return [_row(header, values) for values in islice(reader, MAX_ROWS)]
    except csv.Error:
        return []


def _objects(value: Any) -> list[dict[str, Any]]:
    """The objects a JSON document holds: an array's, the first array of objects of an object, or itself."""
    if isinstance(value, list):
        return [v for v in value[:MAX_ROWS] if isinstance(v, dict)]
    if isinstance(value, dict):
        for item in islice(value.values(), MAX_COLUMNS):
            if isinstance(item, list) and item and isinstance(item[0], dict):
                return _objects(item)
        return [value]
    return []


def _json_items(text: str) -> Iterator[Any]:
    """Items of a JSON array cut anywhere, or the values of JSON lines, as far as they parse."""
    decoder = json.JSONDecoder()
    stripped = text.lstrip()
    if stripped.startswith("["):
        at = 1
        while at < len(stripped):
            while at < len(stripped) and stripped[at] in " \t\r\n,":
                at += 1
            try:
                item, at = decoder.raw_decode(stripped, at)
            except (ValueError, RecursionError):
                return
            yield item
    else:
        for line in _lines(text):
            try:
                yield json.loads(line)
            except (ValueError, RecursionError):
                continue


def _json(text: str) -> list[dict[str, Any]]:
    try:
        return _objects(json.loads(text))
    except (ValueError, RecursionError):
        pass
    return [item for item in islice(_json_items(text), MAX_ROWS) if isinstance(item, dict)]


def _sql_value(token: str) -> Any:
    if token.startswith("'"):
        return token[1:-1].replace("''", "'").replace("\\'", "'")
    return None if token.upper() == "NULL" else token


def _tuples(text: str, at: int) -> Iterator[list[Any]]:
    """The value tuples of one INSERT from `at` (``(1,'a'),(2,'b');``), as far as they parse."""
    while at < len(text) and text[at] in " \t\r\n,":
        at += 1
    while at < len(text) and text[at] == "(":
        values: list[Any] = []
        at += 1
        while True:
            found = _TUPLE_VALUE.match(text, at)
            if found is None:
                return
            values.append(_sql_value(found.group(1).strip()))
            at = found.end()
            if found.group(2) == ")":
                break
        yield values
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1


def _sql(text: str) -> list[dict[str, Any]]:
    """Rows of INSERT statements and COPY blocks, keyed ``table.column``."""
    tables: dict[str, list[str]] = {}
    for create in islice(_CREATE.finditer(text), _MAX_STATEMENTS):
        body = text[create.end() : create.end() + _MAX_CREATE].split(";", 1)[0]
        names = [m.group(1) for m in _COLUMN.finditer(body)]
        tables[create.group(2)] = [n for n in names if n.lower() not in _NOT_COLUMN][:MAX_COLUMNS]
    rows: list[dict[str, Any]] = []
    for insert in _INSERT.finditer(text):
        table = insert.group(2)
        listed = insert.group(3)
        columns = _NAMES.findall(listed) if listed else tables.get(table, [])
        for values in _tuples(text, insert.end()):
            names = columns or [f"column{i}" for i in range(len(values))]
            rows.append({table: _row(names, values)})
            if len(rows) >= MAX_ROWS:
                return rows
    for copy in islice(_COPY.finditer(text), _MAX_STATEMENTS):
        table, columns = copy.group(2), _NAMES.findall(copy.group(3))
        for line in _lines(text[copy.end() :]):
            if line == "\\.":
                break
            rows.append({table: _row(columns, [None if v == "\\N" else v for v in line.split("\t")])})
            if len(rows) >= MAX_ROWS:
                return rows
    return rows


def head_rows(name: str, head: bytes) -> tuple[dict[str, Any], ...]:
    """Documents read from the first bytes of the file `name` (CSV, TSV, JSON, JSON lines, SQL or text,
    by its extension), empty when it is none of these, binary or unreadable."""
    extension = file_name(name).extension
    if extension not in _JSON | _SQL | _DELIMITED:
        return ()
    text = decode(head)
    if text is None:
        return ()
    if extension in _JSON:
        return tuple(_json(text))
    if extension in _SQL:
        return tuple(_sql(text))
    return tuple(_delimited(text, extension in _TABLES))


def file_samples(samples: Iterable[Sample]) -> tuple[Sample, ...]:
    """A file store's samples (`assess.filenames` says how files are presented) with each file's head
    read into rows nested under its path (``{"exports/customers.csv": {"phone": ...}}``), as the
    personal-data detector reads a database's; files without a readable head are left out."""
    read = []
    for sample in samples:
        rows = tuple(
            {path: row}
            for document in sample.documents
            if isinstance(path := document.get("key"), str)
            and isinstance(head := document.get("value"), bytes)
            for row in head_rows(path, head)
        )
        if rows:
            read.append(Sample(sample.database, sample.collection, rows))
    return tuple(read)
