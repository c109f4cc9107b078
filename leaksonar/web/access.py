"""Who is asking, and what they may see: the one access rule, shared by the API and the UI.

A PUBLIC viewer never sees a critical service's address, port or details; it counts only in
aggregates (totals, facets, stats) and in the "withheld" count of a search. Analysts see everything
(records never hold raw personal data)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy import and_, or_, select

from leaksonar.model import Event
from leaksonar.store.db import Store
from leaksonar.store.schema import services
from leaksonar.store.search import SearchPage
from leaksonar.web.keys import lookup

KEY_HEADER = "X-API-Key"
KEY_COOKIE = "leaksonar_key"


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
    """The key from `X-API-Key`, `Authorization: Bearer KEY` or the `leaksonar_key` cookie."""
    if key := request.headers.get(KEY_HEADER):
        return key.strip()
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(KEY_COOKIE) or None


def viewer(request: Request) -> Viewer:
    """FastAPI dependency: the viewer behind the request. No key: the app's anonymous level;
    an unknown or revoked key: HTTP 401."""
    key = presented_key(request)
    if key is None:
        return Viewer("anonymous", Level(request.app.state.anonymous))
    found = lookup(request.app.state.store, key)
    if found is None:
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return Viewer(found["name"], Level(found["level"]))


def visible(record: dict[str, Any], viewer: Viewer) -> bool:
    """False for a critical finding (or an event of one) when the viewer is not an analyst."""
    return viewer.analyst or record.get("severity") != "critical"


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
    return replace(page, hits=[h for h in page.hits if visible(h, viewer)], offset=offset), withheld


def host_view(store: Store, ip: str, viewer: Viewer) -> dict[str, Any] | None:
    """The host as the viewer may see it: ip, first_seen, last_seen, `services` and their `history` without
    the withheld ones, and `withheld` (their count). None when the host is not indexed or, for a public
    viewer, when every service on it is withheld (no answer tells a critical host from an unknown one)."""
    found = store.host(ip)
    if found is None:
        return None
    shown = [s for s in found["services"] if visible(s, viewer)]
    if not (shown or viewer.analyst):
        return None
    ports = {s["port"] for s in shown}
    return {
        **found,
        "services": shown,
        "withheld": len(found["services"]) - len(shown),
        "history": [p for p in store.history(found["ip"]) if p["port"] in ports],
    }


def visible_finding(store: Store, record: dict[str, Any], viewer: Viewer) -> bool:
    """A stored finding (of any scan) is withheld from a public viewer when it, or its service's latest
    state, is critical."""
    latest = store.services(record["ip"], record["port"])
    return visible(record, viewer) and all(visible(s, viewer) for s in latest)


def visible_events(store: Store, found: Sequence[Event], viewer: Viewer) -> list[Event]:
    """The events the viewer may see: for a PUBLIC viewer, none that is critical or that happened on a
    service whose latest state is critical (a closed critical service's event has no severity)."""
    if viewer.analyst:
        return list(found)
    places = {(e.ip, e.port) for e in found if visible(e.to_record(), viewer)}
    hidden = _critical_services(store, places)
    return [e for e in found if visible(e.to_record(), viewer) and (e.ip, e.port) not in hidden]


def _critical_services(store: Store, places: set[tuple[str, int]]) -> set[tuple[str, int]]:
    if not places:
        return set()
    where = or_(*(and_(services.c.ip == ip, services.c.port == port) for ip, port in places))
    query = select(services.c.ip, services.c.port).where(services.c.severity == "critical", where)
    with store.engine.connect() as conn:
        return {(r.ip, r.port) for r in conn.execute(query)}
