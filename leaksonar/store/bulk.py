"""Writing a batch of rows, a few statements per table whatever the batch's size: SQLite's own
executemany (one prepared statement, rows bound in C), PostgreSQL's `unnest` of one array per column (one
statement, one round trip, arrays sent in binary). SQLAlchemy's per-row parameter processing would cost
more than the database's work, so statements are built once per table and columns and run on the driver;
values must be ready for it (JSON as text)."""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Integer,
    Table,
    Text,
    TypeDecorator,
    and_,
    bindparam,
    false,
    func,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY

Row = dict[str, Any]

_CHUNK = 500
"""Values one SQLite statement names (far below its limit of bound parameters)."""
_STATEMENTS: dict[tuple[Any, ...], str] = {}


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _kind(column: Column[Any]) -> Any:
    return column.type.impl if isinstance(column.type, TypeDecorator) else column.type


def _sent_as(column: Column[Any]) -> str:
    """The PostgreSQL type a column's values travel in (JSON as text)."""
    kind = _kind(column)
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, Integer):
        return "bigint"
    return "text"


def _latest(rows: Sequence[Row], keys: Sequence[str], kept: Sequence[str]) -> list[Row]:
    """One row per key, as upserting `rows` one after the other would leave it: the last row of each key,
    with the `kept` columns of its first (PostgreSQL refuses a statement that updates one row twice)."""
    found: dict[tuple[Any, ...], Row] = {}
    key = itemgetter(*keys)
    for row in rows:
        k = key(row)
        first = found.get(k)
        found[k] = {**row, **{name: first[name] for name in kept}} if first is not None and kept else row
    return list(found.values())


def write(
    conn: Connection,
    table: Table,
    rows: Sequence[Row],
    keys: Sequence[str] = (),
    kept: Sequence[str] = (),
) -> None:
    """INSERT `rows` (their columns are the first row's) into `table`; with `keys`, an upsert on them that
    updates every column but the keys and the `kept` ones, as if the rows were upserted one after the
    other."""
    if not rows:
        return
    if keys:
        rows = _latest(rows, keys, kept)
    names = tuple(rows[0])
    postgresql = conn.dialect.name == "postgresql"
    cached = (postgresql, table.name, names, tuple(keys), tuple(kept))
    if cached not in _STATEMENTS:
        _STATEMENTS[cached] = _statement(table, names, keys, kept, postgresql)
    sql = _STATEMENTS[cached]
    values = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    if postgresql:  # one array per column
        conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*map(values, rows), strict=True)))
    else:
        conn.exec_driver_sql(sql, list(map(values, rows)))


def _statement(
    table: Table, names: Sequence[str], keys: Sequence[str], kept: Sequence[str], postgresql: bool
) -> str:
    columns = ", ".join(map(_quoted, names))
    if postgresql:
        json_columns = {name for name in names if isinstance(_kind(table.c[name]), JSON)}
        picked = ", ".join(f"u.{_quoted(n)}{'::json' if n in json_columns else ''}" for n in names)
        arrays = ", ".join(f"%b::{_sent_as(table.c[name])}[]" for name in names)
        source = f"SELECT {picked} FROM unnest({arrays}) AS u({columns})"
    else:
        source = f"VALUES ({', '.join('?' for _ in names)})"
    sql = f"INSERT INTO {_quoted(table.name)} ({columns}) {source}"
    if keys:
        updated = [name for name in names if name not in (*keys, *kept)]
        assignments = ", ".join(f"{_quoted(name)} = excluded.{_quoted(name)}" for name in updated)
        sql += f" ON CONFLICT ({', '.join(map(_quoted, keys))}) DO UPDATE SET {assignments}"
    return sql


def delete(
    conn: Connection, table: Table, column: str, values: Sequence[Any], returning: Sequence[str] = ()
) -> list[Any]:
    """DELETE the rows of `table` whose `column` is one of `values`; the `returning` columns of the rows
    deleted."""
    if not values:
        return []
    where = f"DELETE FROM {_quoted(table.name)} WHERE {_quoted(column)}"
    tail = f" RETURNING {', '.join(map(_quoted, returning))}" if returning else ""
    if conn.dialect.name == "postgresql":
        sql = f"{where} = ANY(%b::{_sent_as(table.c[column])}[]){tail}"
        result = conn.exec_driver_sql(sql, (list(values),))
        return list(result) if returning else []
    deleted: list[Any] = []
    for start in range(0, len(values), _CHUNK):
        chunk = tuple(values[start : start + _CHUNK])
        result = conn.exec_driver_sql(f"{where} IN ({', '.join('?' for _ in chunk)}){tail}", chunk)
        if returning:
            deleted += result
    return deleted


def pairs(
    conn: Connection,
    table: Table,
    selected: Sequence[str],
    pair: tuple[str, str],
    wanted: Sequence[tuple[Any, Any]],
) -> list[Any]:
    """The `selected` columns of the rows of `table` whose two `pair` columns hold one of the `wanted`
    pairs (a unique index on them makes this a lookup per pair)."""
    if not wanted:
        return []
    picked = ", ".join(f"t.{_quoted(name)}" for name in selected)
    first, second = map(_quoted, pair)
    source = f"SELECT {picked} FROM {_quoted(table.name)} AS t"
    if conn.dialect.name == "postgresql":
        arrays = [f"{_sent_as(table.c[name])}[]" for name in pair]
        sql = (
            f"{source} JOIN unnest(%b::{arrays[0]}, %b::{arrays[1]}) AS w(a, b)"
            f" ON t.{first} = w.a AND t.{second} = w.b"
        )
        return list(conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*wanted, strict=True))))
    found = []
    for start in range(0, len(wanted), _CHUNK):  # SQLite searches the index once per pair of a join
        chunk = wanted[start : start + _CHUNK]
        sql = (
            f"{source} JOIN (VALUES {', '.join('(?, ?)' for _ in chunk)}) AS w"
            f" ON t.{first} = w.column1 AND t.{second} = w.column2"
        )
        found += conn.exec_driver_sql(sql, tuple(v for p in chunk for v in p))
    return found


def among(conn: Connection, columns: tuple[Any, Any], wanted: Sequence[tuple[Any, Any]]) -> Any:
    """A condition: the two `columns` hold one of the `wanted` pairs. On SQLite a list of the first values
    too (it searches an index by those, and would read the whole index for the pairs alone); on
    PostgreSQL a join with one array per column (a list of row values is an OR of every pair there, for
    every row read)."""
    if not wanted:
        return false()
    if conn.dialect.name != "postgresql":
        return and_(columns[0].in_(sorted({first for first, _ in wanted})), tuple_(*columns).in_(wanted))
    arrays = (
        bindparam(None, list(values), ARRAY(BigInteger if isinstance(_kind(column), Integer) else Text))
        for column, values in zip(columns, zip(*wanted, strict=True), strict=True)
    )
    return tuple_(*columns).in_(select(*map(func.unnest, arrays)))
