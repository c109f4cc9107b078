"""The REST API (mounted at /api): search, hosts, findings, events (cursor pages and a live stream),
stats and scans. Every answer goes through the access rule of leaksonar.web.access."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from leaksonar.model import EVENT_TYPES, Event
from leaksonar.model.record import FindingRecord, documented
from leaksonar.sanitize import for_json
from leaksonar.store.db import Store
from leaksonar.store.query import QueryError
from leaksonar.store.rows import HistoryPoint, Stats
from leaksonar.targets import parse_address
from leaksonar.web.access import (
    Viewer,
    host_view,
    search_facets,
    search_page,
    viewer,
    visible_events,
    visible_finding,
    visible_scans,
)

router = APIRouter(tags=["api"])

MAX_ID = 2**63 - 1
"""Largest id a database stores (SQLite and PostgreSQL bigint)."""
HEARTBEAT_SECONDS = 15
"""A comment line on the event stream this often, so proxies and clients see it alive."""
STREAM_BATCH = 200
"""Events read from the store per look."""


class InertJSONResponse(JSONResponse):
    """Every JSON answer: the exact strings for a JSON reader, with no character in the bytes that acts
    where the answer is shown (a bidi control as `\\u202e`; `for_json`)."""

    def render(self, content: Any) -> bytes:
        return for_json(content).encode("utf-8")


class Error(BaseModel):
    error: str = Field(description="One line naming what is wrong.")
    position: int | None = Field(None, description="0-based offset in the query (query errors only).")


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Bad input"},
    401: {"model": Error, "description": "Unknown or revoked API key"},
    429: {"model": Error, "description": "Rate limit exceeded (see Retry-After)"},
}


@documented
class StoredFinding(FindingRecord):
    id: int
    """The stored finding's id: /api/findings/{id}."""


@documented
class Hit(FindingRecord):
    id: int | None
    """The stored finding's id (a public id, leaksonar.web.ids): /api/findings/{id}."""
    first_seen: str
    last_seen: str


class Facet(BaseModel):
    value: str
    count: int


class SearchResult(BaseModel):
    query: str
    total: int = Field(description="Every match this viewer may see.")
    offset: int
    limit: int
    hits: list[Hit] = Field(description="The page of shown matches: severity, rows, address order.")
    facets: dict[str, list[Facet]] | None = Field(None, description="Top values per field (facets=1).")


class Host(BaseModel):
    ip: str
    first_seen: str
    last_seen: str
    services: list[Hit]
    history: list[HistoryPoint] = Field(description="One point per stored finding, oldest first.")


class EventPage(BaseModel):
    events: list[Event]
    next: int = Field(description="Pass as `after` for the following page (or to poll for new events).")
    more: bool = Field(description="The page was full: more events may follow at once.")


class ScanSource(BaseModel):
    kind: str = Field(description="discovery (leaksonar's own) or open-from (another scanner's output).")
    format: str | None = Field(None, description="The format detected in an open-from input.")
    file: str | None = Field(None, description="Analysts only. The open-from file, or - (standard input).")


class Scan(BaseModel):
    id: str
    started_at: str
    finished_at: str | None
    status: str
    size: int
    probes: int
    open_ports: int | None = Field(None, description="Analysts only.")
    services: int | None = Field(None, description="Analysts only.")
    exposed: int | None = Field(None, description="Analysts only.")
    targets: str | None = Field(None, description="Analysts only.")
    ports: str | None = Field(None, description="Analysts only.")
    version: str | None = Field(None, description="The leaksonar that started it (None: an older one).")
    source: ScanSource | None = Field(None, description="Where its open ports came from.")
    settings: dict[str, float | int | None] | None = Field(
        None,
        description="Analysts only. rate, concurrency, per_host, timeout, retries, inspect_concurrency, "
        "workers, read_timeout.",
    )


Who = Annotated[Viewer, Depends(viewer)]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _address(ip: str) -> str:
    """An IPv4 or IPv6 address in any spelling, as the index writes it; else a 400."""
    try:
        return str(parse_address(ip))
    except ValueError:
        raise HTTPException(400, f"{ip!r} is not an IP address") from None


@router.get("/search", response_model=SearchResult, responses=ERRORS)
def search(
    request: Request,
    who: Who,
    q: Annotated[str, Query(description="Query (docs/search.md); empty: all.")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    facets: Annotated[bool, Query(description="Add the top values of the facet fields.")] = False,
) -> Any:
    """Findings matching a query, a page at a time. A public viewer's search, counts and facets run
    over the visible set only."""
    store = _store(request)
    try:
        page = search_page(store, q, who, limit=limit, offset=offset)
        found = search_facets(store, q, who) if facets else None
    except QueryError as exc:
        return InertJSONResponse({"error": str(exc), "position": exc.position}, status_code=400)
    return {
        "query": q,
        "total": page.total,
        "offset": offset,
        "limit": limit,
        "hits": [hit.to_record() for hit in page.hits],
        "facets": (
            {field: [{"value": str(v), "count": n} for v, n in top] for field, top in found.items()}
            if found is not None
            else None
        ),
    }


@router.get("/hosts/{ip}", response_model=Host, responses={**ERRORS, 404: {"model": Error}})
def host(request: Request, who: Who, ip: str) -> Any:
    """One host: the latest state of each service, and the history of every stored finding. A public
    viewer gets the visible services only; a host with nothing else is not found for it."""
    found = host_view(_store(request), _address(ip), who)
    if found is None:
        raise HTTPException(404, "host not in the index")
    return found.to_record()


@router.get(
    "/findings/{finding_id}",
    response_model=StoredFinding,
    responses={**ERRORS, 404: {"model": Error}},
)
def finding(request: Request, who: Who, finding_id: Annotated[int, Path(ge=0, le=MAX_ID)]) -> Any:
    """One stored finding record (any scan's). A public viewer gets a critical one exactly as an unknown
    one: 404."""
    found = visible_finding(_store(request), finding_id, who)
    if found is None:
        raise HTTPException(404, "finding not in the index")
    return found.to_record()


def _event_filters(type_: str | None, ip: str | None) -> dict[str, Any]:
    types = [t.strip() for t in (type_ or "").split(",") if t.strip()]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise HTTPException(400, f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}")
    return {"types": types, "ip": _address(ip) if ip else None}


TypeFilter = Annotated[
    str | None, Query(alias="type", description="Only these event types, comma-separated.")
]
IpFilter = Annotated[str | None, Query(description="Only events on this IPv4 or IPv6 address.")]


@router.get("/events", response_model=EventPage, responses=ERRORS)
def events(
    request: Request,
    who: Who,
    after: Annotated[
        int, Query(ge=0, le=MAX_ID, description="Cursor: the `next` of the page before (0: from the first).")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    type_: TypeFilter = None,
    ip: IpFilter = None,
) -> Any:
    """Change events, oldest first, a page at a time: follow `next` while `more` is true. A public
    viewer's pages and cursor run over the visible events only."""
    page = visible_events(_store(request), who, after=after, limit=limit, **_event_filters(type_, ip))
    return {
        "events": [e.to_record() for e in page],
        "next": page[-1].id if page else after,
        "more": len(page) == limit,
    }


def _latest_event_id(store: Store, who: Viewer) -> int:
    newest = visible_events(store, who, limit=1)
    return (newest[-1].id or 0) if newest else 0


@router.get(
    "/events/stream",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}},
)
async def stream(
    request: Request,
    who: Who,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="Start after this event id (default: only new ones).")
    ] = None,
    type_: TypeFilter = None,
    ip: IpFilter = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_ID, description="Resume after this id.")] = None,
) -> EventSourceResponse:
    """Live change events as server-sent events: `id` is the event id, `data` its JSON record.
    Reconnecting clients resume after Last-Event-ID; a comment line is sent as heartbeat."""
    store = _store(request)
    filters = _event_filters(type_, ip)
    start = last_event_id if last_event_id is not None else after
    if start is None:
        start = await run_in_threadpool(_latest_event_id, store, who)
    poll = request.app.state.poll_seconds
    return EventSourceResponse(_follow(store, who, start, filters, poll), ping=HEARTBEAT_SECONDS)


async def _follow(
    store: Store, who: Viewer, last: int, filters: dict[str, Any], poll: float
) -> AsyncIterator[ServerSentEvent]:
    while True:
        page = await run_in_threadpool(visible_events, store, who, after=last, limit=STREAM_BATCH, **filters)
        for event in page:
            yield ServerSentEvent(data=for_json(event.to_record()), id=str(event.id))
        if page:
            last = page[-1].id or last
        if len(page) < STREAM_BATCH:
            await asyncio.sleep(poll)


@router.get("/stats", response_model=Stats, responses=ERRORS)
def stats(request: Request, _who: Who) -> Any:
    """Counts over the whole index (aggregates: the same for every viewer)."""
    return asdict(_store(request).stats())


@router.get("/scans", response_model=list[Scan], responses=ERRORS)
def scans(request: Request, who: Who, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    """Scans, newest first. What a scan targeted and what it found are shown to analysts only."""
    return visible_scans(_store(request), who, limit)
