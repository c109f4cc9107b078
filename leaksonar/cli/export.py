"""`leaksonar export`: the services a query matches, as JSON lines (the exact records), CSV (fixed
columns, every cell safe to open in a spreadsheet) or one MISP event (leaksonar.cli.export_misp)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from leaksonar.cli import export_misp
from leaksonar.cli.common import DbOption, fail, needs_extra, open_store
from leaksonar.sanitize import for_csv, for_json, for_terminal

if TYPE_CHECKING:
    from leaksonar.store.db import Store
    from leaksonar.store.rows import Hit

PAGE = 1000
"""Services read from the index at a time (the store's largest page): memory stays bounded."""


def _cert(record: dict[str, Any]) -> dict[str, Any]:
    """The certificate the service presented; empty for plaintext or none sent."""
    return (record.get("tls") or {}).get("cert") or {}


CSV_COLUMNS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "ip": lambda r: r["ip"],
    "port": lambda r: r["port"],
    "protocol": lambda r: r["protocol"],
    "software": lambda r: (r.get("software") or {}).get("name"),
    "version": lambda r: (r.get("software") or {}).get("version"),
    "auth": lambda r: r["auth"],
    "exposed": lambda r: r["exposed"],
    "severity": lambda r: r.get("severity"),
    "databases": lambda r: r["dataset"].get("databases"),
    "collections": lambda r: r["dataset"].get("collections"),
    "rows": lambda r: r["dataset"].get("rows"),
    "size_bytes": lambda r: r["dataset"].get("size_bytes"),
    "pii": lambda r: " ".join(r.get("pii") or {}),
    "ransom": lambda r: bool((r.get("ransom") or {}).get("infected")),
    "btc_addresses": lambda r: " ".join(
        sorted({a for n in (r.get("ransom") or {}).get("notes", ()) for a in n.get("btc_addresses", ())})
    ),
    "country": lambda r: (r.get("geo") or {}).get("country"),
    "asn": lambda r: (r.get("network") or {}).get("asn"),
    "org": lambda r: (r.get("network") or {}).get("org"),
    "first_seen": lambda r: r["first_seen"],
    "last_seen": lambda r: r["last_seen"],
    "summary": lambda r: r.get("summary"),
    "hostname": lambda r: r.get("hostname"),
    "tls_version": lambda r: (r.get("tls") or {}).get("version"),
    "cert_names": lambda r: " ".join(_cert(r).get("names", ())),
    "cert_issuer": lambda r: _cert(r).get("issuer"),
    "cert_not_after": lambda r: _cert(r).get("not_after"),
    "cert_expired": lambda r: _cert(r).get("expired"),
    "cert_sha256": lambda r: _cert(r).get("sha256"),
}
"""The CSV columns, in order (documented in docs/cli.md): a column is only ever added at the end."""


def csv_cell(value: Any) -> str:
    """A CSV cell: text with control characters made visible and formulas defused; numbers, booleans
    (true/false) and missing values (empty) as they are."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return for_csv(for_terminal(str(value)))


def _jsonl(hits: Iterator[Hit], stream: IO[str], query: str, tlp: str) -> int:
    count = 0
    for hit in hits:
        stream.write(for_json(hit.to_record(), sort_keys=True) + "\n")
        count += 1
    return count


def _csv(hits: Iterator[Hit], stream: IO[str], query: str, tlp: str) -> int:
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for hit in hits:
        record = hit.to_record()
        writer.writerow([csv_cell(column(record)) for column in CSV_COLUMNS.values()])
        count += 1
    return count


WRITERS: dict[str, Callable[[Iterator[Hit], IO[str], str, str], int]] = {
    "jsonl": _jsonl,
    "csv": _csv,
    "misp": export_misp.write_event,
}
"""Export formats: each writes every hit to the stream and returns how many it wrote (given the query
and the TLP level, which only the MISP event records)."""


def _hits(store: Store, query: str) -> Iterator[Hit]:
    """Every service matching `query`, in search order, one page at a time."""
    offset = 0
    while True:
        page = store.search(query, limit=PAGE, offset=offset)
        yield from page.hits
        offset += len(page.hits)
        if not page.hits or offset >= page.total:
            return


@contextmanager
def _output(out: str) -> Iterator[IO[str]]:
    if out == "-":
        yield sys.stdout
        return
    try:
        with Path(out).open("w", encoding="utf-8", newline="") as stream:
            yield stream
    except OSError as exc:
        fail(f"--out {out}: {exc.strerror}")


def export(
    query: Annotated[
        str, typer.Argument(help="Which services, in the search language (docs/search.md); default: all.")
    ] = "",
    fmt: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(WRITERS)}.")] = "jsonl",
    out: Annotated[str, typer.Option("--out", help="File to write, or - for standard output.")] = "-",
    tlp: Annotated[
        str | None,
        typer.Option(help=f"MISP only: the event's TLP tag, one of {', '.join(export_misp.TLP)} (amber)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Export the services a query matches, most severe first: JSON lines (the finding records as the
    index holds them), CSV (fixed columns, docs/cli.md), read page by page, or one MISP event."""
    from leaksonar.store.query import QueryError

    write = WRITERS.get(fmt)
    if write is None:
        fail(f"--format {fmt!r}: choose from {', '.join(WRITERS)}")
    if tlp is not None and fmt != "misp":
        fail("--tlp applies to --format misp only")
    if tlp is not None and tlp not in export_misp.TLP:
        fail(f"--tlp {tlp!r}: choose from {', '.join(export_misp.TLP)}")
    if fmt == "misp":
        with needs_extra("misp", "export --format misp"):
            import_module("pymisp")
    store = open_store(db)
    try:
        matched = store.search(query, limit=0).total
    except QueryError as exc:
        fail(str(exc))
    if fmt == "misp" and matched > export_misp.MAX_SERVICES:
        fail(export_misp.too_many(matched))
    with _output(out) as stream:
        count = write(_hits(store, query), stream, query, tlp or "amber")
    typer.echo(f"exported {count:,} service(s)", err=True)
