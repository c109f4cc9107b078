"""Who is asking, and what they may see: the one access rule, shared by the API and the UI.

A PUBLIC viewer's every read runs over the visible set only (`leaksonar.store.query.public_only`):
critical services, with every stored finding and event of them, are left out in the store's query
before it filters, counts, facets, pages or moves a cursor, so no public answer depends on them.
Analysts see everything (records never hold raw personal data). The dashboard's totals
(`store.stats`) are global aggregates that take no query. A scan's own counts are not: they are
narrowed (`visible_scans`).

Ids: every finding and event id that leaves the web, and every id or cursor it takes, is a public id
(`leaksonar.web.ids`), the same for every viewer: the functions below take and give public ids only, so
no page or answer shows a row id, whose gaps would locate hidden rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, Literal

from fastapi import HTTPException, Request

from leaksonar.model import Event
from leaksonar.store.db import Store
from leaksonar.store.rows import FindingRow, HistoryPoint, Hit, KeyRow, SearchPage
from leaksonar.web.ids import SECRET_NAME, Kind, PublicIds
from leaksonar.web.keys import lookup, session_key

KEY_HEADER = "X-API-Key"
SESSION_COOKIE = "leaksonar_session"


class Level(StrEnum):
    PUBLIC = "public"
    ANALYST = "analyst"


@dataclass(frozen=True)
class Viewer:
    name: str
    level: Level

    @property
    def analyst(self) -> bool:
        return self.level is Level.ANALYST


def presented_key(request: Request) -> str | None:
    """The key from `X-API-Key` or `Authorization: Bearer KEY`."""
    if key := request.headers.get(KEY_HEADER):
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def presented_session(request: Request) -> str | None:
    """The session token from the `leaksonar_session` cookie (set by the UI's /login)."""
    return request.cookies.get(SESSION_COOKIE) or None


Credential = tuple[Literal["key", "session"], str]
REFUSED = {"key": "unknown or revoked API key", "session": "unknown or expired session; sign in again"}


def credential(request: Request) -> Credential | None:
    """What the request signs in with: its key (header), else its session (cookie); None: neither."""
    if (key := presented_key(request)) is not None:
        return "key", key
    if (token := presented_session(request)) is not None:
        return "session", token
    return None


def holder(store: Store, presented: Credential) -> KeyRow | None:
    """The valid key behind a credential, or None (unknown or revoked key, unknown or expired session)."""
    kind, secret = presented
    return lookup(store, secret) if kind == "key" else session_key(store, secret)


def viewer(request: Request) -> Viewer:
    """FastAPI dependency: the viewer behind the request. No key or session: the app's anonymous level;
    an unknown or revoked key, or an unknown or expired session: HTTP 401."""
    presented = credential(request)
    if presented is None:
        return Viewer("anonymous", Level(request.app.state.anonymous))
    found = holder(request.app.state.store, presented)
    if found is None:
        raise HTTPException(401, REFUSED[presented[0]], headers={"WWW-Authenticate": "Bearer"})
    return Viewer(found.name, Level(found.level))


def visible(severity: str | None, viewer: Viewer) -> bool:
    """False for a critical service when the viewer is not an analyst (the rule on a service row
    already read, e.g. by the disclosure report's plan)."""
    return viewer.analyst or severity != "critical"


def public_ids(store: Store, kind: Kind) -> PublicIds:
    """The index's public ids of one kind of row (keyed by its secret, made on first use)."""
    return PublicIds(store.keyring.secret(SECRET_NAME), kind)


def shown_id(ids: PublicIds, row_id: int | None) -> int | None:
    """The id the web shows for a row id (None stays None)."""
    return None if row_id is None else ids.encode(row_id)


def row_id(store: Store, kind: Kind, public_id: int) -> int | None:
    """The row id behind a public id or cursor; None for a number that is none (answered as unknown)."""
    return public_ids(store, kind).decode(public_id)


def search_page(store: Store, query: str, viewer: Viewer, *, limit: int = 50, offset: int = 0) -> SearchPage:
    """The viewer's page of matches of `query`; `total` counts the matches it may see. QueryError for a
    bad query."""
    found = store.search(query, limit=limit, offset=offset, public=not viewer.analyst)
    return replace(found, hits=_shown_hits(public_ids(store, "finding"), found.hits))


def _shown_hits(ids: PublicIds, hits: list[Hit]) -> list[Hit]:
    return [replace(hit, id=shown_id(ids, hit.id)) for hit in hits]


def search_facets(store: Store, query: str, viewer: Viewer) -> dict[str, list[tuple[str, int]]]:
    """The top values of each facet field among the matches of `query` the viewer may see."""
    return store.facets(query, public=not viewer.analyst)


@dataclass(frozen=True, slots=True)
class HostPage:
    """A host as one viewer may see it: its services and their history."""

    ip: str
    first_seen: str
    last_seen: str
    services: list[Hit]
    history: list[HistoryPoint]

    def to_record(self) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "services": [s.to_record() for s in self.services],
            "history": [asdict(p) for p in self.history],
        }


def host_view(store: Store, ip: str, viewer: Viewer) -> HostPage | None:
    """The host as the viewer may see it. None when the host is not indexed or, for a public viewer, when
    every service on it is critical (no answer tells a critical host from an unknown one)."""
    public = not viewer.analyst
    found = store.hosts.get(ip, public=public)
    if found is None:
        return None
    ids = public_ids(store, "finding")
    return HostPage(
        ip=found.ip,
        first_seen=found.first_seen,
        last_seen=found.last_seen,
        services=_shown_hits(ids, found.services),
        history=[replace(p, id=ids.encode(p.id)) for p in store.findings.history(found.ip, public=public)],
    )


def visible_finding(store: Store, finding_id: int, viewer: Viewer) -> FindingRow | None:
    """The stored finding (of any scan) with this public id, None when it is unknown or hidden from the
    viewer, or the number is no public id: the cases answer alike."""
    found = (
        store.findings.get(number, public=not viewer.analyst)
        if (number := row_id(store, "finding", finding_id)) is not None
        else None
    )
    return replace(found, id=finding_id) if found else None


def visible_events(store: Store, viewer: Viewer, *, after: int | None = None, **filters: Any) -> list[Event]:
    """`store.events.find(**filters)` over the events the viewer may see (filtered, limited and paged
    after the hidden ones are left out), with public ids; `after`: a public id, the cursor (0: from the
    first event; a number that is no public id: nothing after it)."""
    if after is not None:
        filters["after_id"] = 0 if after == 0 else row_id(store, "event", after)
        if filters["after_id"] is None:
            return []
    ids = public_ids(store, "event")
    return [
        replace(e, id=shown_id(ids, e.id)) for e in store.events.find(**filters, public=not viewer.analyst)
    ]


def visible_event(store: Store, event_id: int, viewer: Viewer) -> Event | None:
    """The event with this public id, None when it is unknown or hidden from the viewer, or the number is
    no public id."""
    number = row_id(store, "event", event_id)
    found = store.events.get(number, public=not viewer.analyst) if number is not None else None
    return replace(found, id=event_id) if found else None


ANALYSTS_ONLY_SCAN_FIELDS = ("targets", "ports", "open_ports", "services", "exposed", "settings")
"""What a public viewer does not get of a scan: what it targeted (it can name a critical host), how (its
rate and limits), and what it found. Its counts are per scan, not global: a scan of one address that found
one service more than the visible set holds locates a critical service, so they are left out rather than
counted over the visible set
(a count over every finding of a scan, per scan listed)."""


PUBLIC_SOURCE_FIELDS = ("kind", "format")
"""What a public viewer gets of a scan's source: whether it discovered its ports or read them from another
scanner's output, and in which format; not the file's name (a path can name a target or an operator)."""


def visible_scans(store: Store, viewer: Viewer, limit: int) -> list[dict[str, Any]]:
    """The latest `limit` scans, newest first, as the viewer may see them (fields out: None), each with how
    it was made (`ScanRow.version`, `.source`, `.settings`)."""
    hidden = () if viewer.analyst else ANALYSTS_ONLY_SCAN_FIELDS
    shown = []
    for row in store.scans.latest(limit):
        source = row.source
        if source is not None and not viewer.analyst:
            source = {key: source.get(key) for key in PUBLIC_SOURCE_FIELDS}
        made = {"version": row.version, "source": source, "settings": row.settings}
        shown.append({**asdict(row), **made, **dict.fromkeys(hidden)})
    return shown
