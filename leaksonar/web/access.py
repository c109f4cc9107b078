"""Who is asking, and what they may see: the one access rule, shared by the API and the UI.

A PUBLIC viewer never sees a critical service's address, port or details; it counts only in
aggregates (totals, facets, stats) and in the "withheld" count of a search. Analysts see everything
(records never hold raw personal data)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
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
    """False for a critical finding (or an event of one) when the viewer is not an analyst."""
    return viewer.analyst or severity != "critical"


def search_page(
    store: Store, query: str, viewer: Viewer, *, limit: int = 50, offset: int = 0
) -> tuple[SearchPage, int]:
    """The viewer's page of matches of `query` (`total`: every match) and how many matches are withheld
    from it. A public viewer's pages run over the matches it may see: critical ones sort first, so its
    pages start that many further. QueryError for a bad query."""
    withheld = 0
    if not viewer.analyst:
        withheld = dict(store.facets(query, ("severity",)).get("severity", [])).get("critical", 0)
    page = store.search(query, limit=limit, offset=offset + withheld)
    return replace(page, hits=[h for h in page.hits if visible(h.severity, viewer)], offset=offset), withheld


@dataclass(frozen=True, slots=True)
class HostPage:
    """A host as one viewer may see it: its services and their history without the withheld ones, and
    how many are withheld."""

    ip: str
    first_seen: str
    last_seen: str
    services: list[Hit]
    withheld: int
    history: list[HistoryPoint]

    def to_record(self) -> dict[str, Any]:
        return {
            "ip": self.ip,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "services": [s.to_record() for s in self.services],
            "withheld": self.withheld,
            "history": [asdict(p) for p in self.history],
        }


def host_view(store: Store, ip: str, viewer: Viewer) -> HostPage | None:
    """The host as the viewer may see it. None when the host is not indexed or, for a public viewer, when
    every service on it is withheld (no answer tells a critical host from an unknown one)."""
    found = store.hosts.get(ip)
    if found is None:
        return None
    shown = [s for s in found.services if visible(s.severity, viewer)]
    if not (shown or viewer.analyst):
        return None
    ports = {s.record["port"] for s in shown}
    return HostPage(
        ip=found.ip,
        first_seen=found.first_seen,
        last_seen=found.last_seen,
        services=shown,
        withheld=len(found.services) - len(shown),
        history=[p for p in store.findings.history(found.ip) if p.port in ports],
    )


def visible_finding(store: Store, found: FindingRow, viewer: Viewer) -> bool:
    """A stored finding (of any scan) is withheld from a public viewer when it, or its service's latest
    state, is critical."""
    latest = store.services.get(found.ip, found.port)
    return visible(found.severity, viewer) and (latest is None or visible(latest.severity, viewer))


def visible_events(store: Store, found: Sequence[Event], viewer: Viewer) -> list[Event]:
    """The events the viewer may see: for a PUBLIC viewer, none that is critical or that happened on a
    service whose latest state is critical (a closed critical service's event has no severity)."""
    if viewer.analyst:
        return list(found)
    places = {(e.ip, e.port) for e in found if visible(e.severity, viewer)}
    hidden = store.services.critical(places)
    return [e for e in found if visible(e.severity, viewer) and (e.ip, e.port) not in hidden]
