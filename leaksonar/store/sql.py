"""What the store's modules share to build statements: the dialect's INSERT (for ON CONFLICT), the
columns that make a row type, and server text as a text column holds it."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from sqlalchemy import Connection, Engine, Select, Table, select


def insert(bind: Engine | Connection, table: Table) -> Any:
    """INSERT into `table` with the ON CONFLICT clauses of the index's database."""
    if bind.dialect.name == "postgresql":  # its dialect module is loaded only for such an index
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def select_as(row_type: type, table: Table) -> Select[Any]:
    """SELECT the columns of `table` named like the fields of `row_type`, in their order (so that
    `row_type(*row)` makes one)."""
    return select(*(table.c[field.name] for field in fields(row_type)))


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str, *, nul: bool = False) -> str:
    """Server text as a text column holds it: a lone surrogate (JSON's `\\ud800` decodes to one; no
    database encodes it) as U+FFFD, and without NUL characters (PostgreSQL refuses them; `nul`: kept, for
    SQLite, which holds them). The finding record, JSON with escapes, keeps the text as it was."""
    text = text if nul else text.replace("\x00", "")
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)
