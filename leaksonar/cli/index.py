"""Reading the index: `hosts`, `search`, `show`, `events`."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer

from leaksonar.cli import render
from leaksonar.cli.common import DbOption, JsonFlag, echo_json, fail, open_store, split_address, whole
from leaksonar.cli.render import err, out
from leaksonar.formats import address_port
from leaksonar.model import Finding


def hosts(
    db: DbOption = None,
    as_json: JsonFlag = False,
    limit: Annotated[int, whole("Hosts to show at most.", least=1)] = 1000,
) -> None:
    """List indexed hosts, most exposed first."""
    rows = open_store(db).hosts.top(limit=limit)
    if as_json:
        echo_json([asdict(row) for row in rows])
    elif rows:
        out.print(render.hosts_table(rows))
    else:
        err.print("no hosts indexed yet; run `leaksonar scan` first")


def search(
    query: Annotated[
        str, typer.Argument(help="e.g. 'protocol:elasticsearch AND pii:national_id' (docs/search.md).")
    ],
    db: DbOption = None,
    as_json: JsonFlag = False,
    facets: Annotated[
        bool, typer.Option("--facets", help="Also count the top values of each facet.")
    ] = False,
    limit: Annotated[int, whole("Hits to show.", least=0, most=1000)] = 50,
    offset: Annotated[int, whole("Hits to skip (paging).")] = 0,
) -> None:
    """Search the index: most severe services first; the query language is in docs/search.md."""
    from leaksonar.store.query import QueryError

    store = open_store(db)
    try:
        page = store.search(query, limit=limit, offset=offset)
        counts = store.facets(query) if facets else None
    except QueryError as exc:
        fail(str(exc))
    if as_json:
        found: dict[str, Any] = {"total": page.total, "hits": [hit.to_record() for hit in page.hits]}
        if counts is not None:
            found["facets"] = {field: [list(pair) for pair in top] for field, top in counts.items()}
        echo_json(found)
        return
    out.print(render.search_table(page.total, page.hits))
    for line in render.facets_lines(counts or {}):
        out.print(line)


def show(
    address: Annotated[str, typer.Argument(help="IP or IP:PORT")],
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show what is known about a host or one of its services, with its timeline of change events."""
    from leaksonar.changes.diff import days_exposed

    ip, port = split_address(address)
    store = open_store(db)
    if port is None:
        rows = store.services.on(ip)
    else:
        rows = [found] if (found := store.services.get(ip, port)) else []
    if not rows:
        fail(f"{address} is not in the index")
    timelines = [store.events.find(ip=row.ip, port=row.port) for row in rows]
    if as_json:
        records = [
            {
                **row.record,
                "history": {
                    "first_seen": row.first_seen,
                    "last_seen": row.last_seen,
                    "days_exposed": days_exposed(timeline, row.last_seen),
                    "events": [e.to_record() for e in timeline],
                },
            }
            for row, timeline in zip(rows, timelines, strict=True)
        ]
        echo_json(records if port is None else records[0])
        return
    out.print(render.findings_table([Finding.from_record(row.record) for row in rows], title=f"{ip}"))
    for row, timeline in zip(rows, timelines, strict=True):
        record = row.record
        out.print(
            render.service_line(record, row.first_seen, row.last_seen, days_exposed(timeline, row.last_seen))
        )
        if tls := render.tls_line(record):
            out.print(tls)
        if record["collections"]:
            out.print(render.collections_table(record))
        if timeline:
            out.print(
                render.events_table(timeline, title=f"{address_port(record['ip'], record['port'])} timeline")
            )


def events(
    since: Annotated[
        str | None,
        typer.Option(help="Only events at or after this time: ISO 8601 (2026-11-28) or ago (7d, 24h)."),
    ] = None,
    types: Annotated[
        str | None, typer.Option("--type", help="Only these types, comma-separated (e.g. wiped,closed).")
    ] = None,
    ip: Annotated[str | None, typer.Option("--ip", help="Only events on this IP (or IP:PORT).")] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per event (JSON lines).")] = False,
    limit: Annotated[int, whole("Show the newest N events at most.", least=1)] = 1000,
) -> None:
    """List change events, oldest first: new exposures, wipes, ransom notes, closed services ..."""
    from leaksonar.formats import parse_since
    from leaksonar.model import EVENT_TYPES

    wanted = [t.strip() for t in (types or "").split(",") if t.strip()]
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        fail(f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}")
    try:
        start = parse_since(since) if since is not None else None
    except ValueError as exc:
        fail(f"--since: {exc}")
    host, port = split_address(ip) if ip else (None, None)
    found = open_store(db).events.find(since=start, types=wanted, ip=host, port=port, limit=limit)
    if as_json:
        for event in found:
            echo_json(event.to_record(), indent=None)
    elif not sys.stdout.isatty():
        for event in found:
            out.print(render.event_line(event), soft_wrap=True)
    elif found:
        out.print(render.events_table(found))
    else:
        err.print("no events")
