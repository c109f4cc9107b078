"""Who is asking, and what they may see: the one access rule, shared by the API and the UI.

A PUBLIC viewer's every read runs over the visible set only (`leaksonar.store.query.public_only`):
critical services, with every stored finding and event of them, are left out in the store's query
before it filters, counts, facets, pages or moves a cursor, so no public answer depends on them.
Analysts see everything (records never hold raw personal data). The dashboard's totals
(`store.stats`) are global aggregates that take no query. A scan's own counts are not: they are
narrowed (`visible_scans`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal

from fastapi import HTTPException, Request

from leaksonar.model import Event
from leaksonar.store.db import Store
from leaksonar.store.rows import FindingRow, HistoryPoint, Hit, KeyRow, SearchPage
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


def search_page(store: Store, query: str, viewer: Viewer, *, limit: int = 50, offset: int = 0) -> SearchPage:
    """The viewer's page of matches of `query`; `total` counts the matches it may see. QueryError for a
    bad query."""
    return store.search(query, limit=limit, offset=offset, public=not viewer.analyst)


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
    return HostPage(
        ip=found.ip,
        first_seen=found.first_seen,
        last_seen=found.last_seen,
        services=found.services,
        history=store.findings.history(found.ip, public=public),
    )


def visible_finding(store: Store, finding_id: int, viewer: Viewer) -> FindingRow | None:
    """The stored finding (of any scan) with this id, None when it is unknown or hidden from the viewer:
    the two cases answer alike."""
    return store.findings.get(finding_id, public=not viewer.analyst)


def visible_events(store: Store, viewer: Viewer, **filters: Any) -> list[Event]:
    """`store.events.find(**filters)` over the events the viewer may see (filtered, limited and paged
    after the hidden ones are left out)."""
    return store.events.find(**filters, public=not viewer.analyst)


def visible_event(store: Store, event_id: int, viewer: Viewer) -> Event | None:
    """The event with this id, None when it is unknown or hidden from the viewer."""
    return store.events.get(event_id, public=not viewer.analyst)


ANALYSTS_ONLY_SCAN_FIELDS = ("targets", "ports", "open_ports", "services", "exposed")
"""What a public viewer does not get of a scan: what it targeted (it can name a critical host), and what it
found. Its counts are per scan, not global: a scan of one address that found one service more than the
visible set holds locates a critical service, so they are left out rather than counted over the visible set
(a count over every finding of a scan, per scan listed)."""


def visible_scans(store: Store, viewer: Viewer, limit: int) -> list[dict[str, Any]]:
    """The latest `limit` scans, newest first, as the viewer may see them (fields out: None)."""
    hidden = () if viewer.analyst else ANALYSTS_ONLY_SCAN_FIELDS
    return [{**asdict(row), **dict.fromkeys(hidden)} for row in store.scans.latest(limit)]
