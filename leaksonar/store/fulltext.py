"""Free text over summaries, collection names and field names: the one dialect-specific part of search.

SQLite: an FTS5 table (rowid = services.id) matched with a quoted FTS5 string. PostgreSQL: a table of the
same text, already cut into words, with a 'simple' tsvector (summary weighted A, collection names B, field
names C) under a GIN index, matched with a tsquery made of quoted words only. The migrations make both.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    bindparam,
    false,
    func,
    literal_column,
    select,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import Boolean

from leaksonar.store.schema import services, services_fts
from leaksonar.store.sql import storable

WEIGHTS = {"summary": "A", "collections": "B", "fields": "C"}
"""The PostgreSQL weight of each text column (the SQLite FTS5 column of the same name)."""


_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The words of `text` as FTS5's unicode61 tokenizer (remove_diacritics 2) sees them: runs of letters
    and digits, in lower case, without diacritics."""
    if not text.isascii():  # ASCII text has no diacritics
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _WORD.findall(text.lower())


MAX_TEXT = 50_000
"""Characters of each text (summary, collection names, field names) the index holds: a PostgreSQL
tsvector holds at most 1 MB, and a hostile server can name many long fields."""


def stored(conn: Connection | Engine, text: str) -> str:
    """`text` (its first MAX_TEXT characters, `sql.storable`) as the free-text table keeps it: as it is for
    FTS5 (which cuts it itself), as words apart for PostgreSQL (so both databases cut text the same way),
    cut to MAX_TEXT characters again (a compatibility character such as ㌀ becomes several letters)."""
    text = storable(text[:MAX_TEXT])
    return " ".join(words(text))[:MAX_TEXT] if conn.dialect.name == "postgresql" else text


class TextMatch(ColumnElement[bool]):
    """services.id IN (the services whose free text has `text`'s words in a row, the last one as a prefix
    with `prefix`), in one text column or (None) in any."""

    type = Boolean()
    inherit_cache = False
    _is_implicitly_boolean = True  # alone in a WHERE: no `= 1` after it on SQLite, which hid the IN's index

    def __init__(self, text: str, prefix: bool, column: str | None) -> None:
        self.text, self.prefix, self.column = text, prefix, column


@compiles(TextMatch, "sqlite")
def _fts5(element: TextMatch, compiler: Any, **kw: Any) -> str:
    expression = '"' + element.text.replace('"', '""') + '"' + ("*" if element.prefix else "")
    if element.column is not None:
        expression = f"{element.column} : {expression}"
    matching = select(services_fts.c.rowid).where(services_fts.c.services_fts.match(expression))
    return compiler.process(services.c.id.in_(matching), **kw)


@compiles(TextMatch, "postgresql")
def _tsquery(element: TextMatch, compiler: Any, **kw: Any) -> str:
    found = words(element.text)
    if not found:
        return compiler.process(false(), **kw)  # nothing a tsvector holds
    weight = WEIGHTS[element.column] if element.column is not None else ""
    last = len(found) - 1
    query = " <-> ".join(  # words are letters and digits only: nothing in them is tsquery syntax
        f"'{word}':{'*' if element.prefix and n == last else ''}{weight}" for n, word in enumerate(found)
    )
    tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), bindparam(None, query, type_=String))
    matching = select(services_fts.c.rowid).where(services_fts.c.document.op("@@")(tsquery))
    return compiler.process(services.c.id.in_(matching), **kw)


@compiles(TextMatch)
def _unsupported(element: TextMatch, compiler: Any, **kw: Any) -> str:
    raise CompileError(f"free text is not available on {compiler.dialect.name}")
