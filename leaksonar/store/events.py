"""Change events: computed once per scan from the previous observation of each service it saw (or, when
it covered a space, should have seen), stored, and read back by filters or as a cursor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select

from leaksonar.changes.diff import diff
from leaksonar.changes.snapshot import Snapshot, snapshot
from leaksonar.model import Event, Finding
from leaksonar.store import StoreError, bulk
from leaksonar.store import search as views
from leaksonar.store.addresses import address_key, interval_keys
from leaksonar.store.query import public_only
from leaksonar.store.rows import ScanRow
from leaksonar.store.scans import Scans
from leaksonar.store.schema import events, findings, scans, services
from leaksonar.store.sql import insert, storable

BATCH = 2000
"""Services whose events are computed together at the end of a scan."""


class Events:
    """`store.events`. `index`: how messages name the index."""

    def __init__(self, engine: Engine, scans: Scans, index: str) -> None:
        self.engine, self.scans, self.index = engine, scans, index

    def record(self, scan_id: str, batch: int = BATCH) -> list[Event]:
        """Store the scan's change events (`store_changes`) and return them."""
        self.store_changes(scan_id, batch)
        return self.find(scan_id=scan_id)

    def store_changes(self, scan_id: str, batch: int = BATCH) -> None:
        """Diff every service the scan saw, and (when it finished) every service seen before in the space
        it covered, against its previous observation; store the changes once. Services are taken `batch`
        at a time, in address order: a few queries and one multi-row INSERT per batch, and only the
        batch's records in memory."""
        scan = self.scans.get(scan_id)
        if scan is None:
            raise StoreError(f"no scan {scan_id} in {self.index}")
        with self.engine.begin() as conn:
            places = sorted(_places(conn, scan), key=lambda p: (address_key(p[0]), p[1]))
            for start in range(0, len(places), batch):
                changes = _changes(conn, places[start : start + batch], scan)
                if changes:
                    rows = [_row(change, sqlite=conn.dialect.name == "sqlite") for change in changes]
                    conn.execute(insert(conn, events).on_conflict_do_nothing(), rows)

    def find(
        self,
        *,
        since: str | None = None,
        types: Sequence[str] = (),
        ip: str | None = None,
        port: int | None = None,
        scan_id: str | None = None,
        limit: int | None = None,
        after_id: int | None = None,
        public: bool = False,
    ) -> list[Event]:
        """Stored events, oldest first: the newest `limit` of those at or after `since` (ISO 8601); with
        `after_id`, the oldest `limit` of those stored after that event (a cursor). `public`: only those
        in the visible set (`query.public_only`), before the limit."""
        newest_first = after_id is None
        order = events.c.id.desc() if newest_first else events.c.id
        query = select(events).order_by(order).limit(limit)
        if public:
            query = query.where(public_only(events))
        if after_id is not None:
            query = query.where(events.c.id > min(after_id, views.MAX_ROW_ID))
        for column, value in ((events.c.ip, ip), (events.c.port, port), (events.c.scan_id, scan_id)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(events.c.time >= since)
        if types:
            query = query.where(events.c.type.in_(types))
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
        return [Event(**row._mapping) for row in (reversed(rows) if newest_first else rows)]

    def get(self, event_id: int, *, public: bool = False) -> Event | None:
        """The event with this id (`public`: None when it is not in the visible set)."""
        if abs(event_id) > views.MAX_ROW_ID:
            return None
        query = select(events).where(events.c.id == event_id, *((public_only(events),) if public else ()))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return Event(**row._mapping) if row else None


def _row(event: Event, *, sqlite: bool) -> dict[str, Any]:
    """An event as its row: without an id (the index gives it one), its summary (made of server text)
    `storable`, as exact as the database holds it (SQLite keeps NUL characters)."""
    row = {name: value for name, value in event.to_record().items() if name != "id"}
    return {**row, "summary": storable(event.summary, nul=sqlite)}


def _places(conn: Connection, scan: ScanRow) -> set[tuple[str, int]]:
    """(address, port) of every service the scan saw and, when it finished, of every indexed service in
    the space it covered."""
    query = select(findings.c.ip, findings.c.port).where(findings.c.scan_id == scan.id)
    places = {(r.ip, r.port) for r in conn.execute(query)}
    if scan.status == "done" and scan.coverage:
        places |= _covered(conn, scan.coverage)
    return places


def _covered(conn: Connection, coverage: dict[str, Any]) -> set[tuple[str, int]]:
    """Indexed services whose address and port lie in a scan's coverage."""
    ports = set(coverage["ports"])
    places: set[tuple[str, int]] = set()
    for first, last in coverage["intervals"]:
        rows = conn.execute(
            select(services.c.ip, services.c.port).where(
                services.c.ip_key.between(*interval_keys(first, last))
            )
        )
        places.update((r.ip, r.port) for r in rows if r.port in ports)
    return places


def _changes(conn: Connection, places: Sequence[tuple[str, int]], scan: ScanRow) -> list[Event]:
    """The events of `places` (in that order) in `scan`: each one's finding in it, if any, against its
    previous observation."""
    keys = bulk.among(conn, (findings.c.ip, findings.c.port), places)
    current = conn.execute(
        select(findings.c.ip, findings.c.port, findings.c.record).where(findings.c.scan_id == scan.id, keys)
    )
    seen = {(r.ip, r.port): Finding.from_record(r.record) for r in current}
    previous = _previous(conn, places, scan)
    changes: list[Event] = []
    for ip, port in places:
        before, ever_exposed = previous.get((ip, port), (None, False))
        finding = seen.get((ip, port))
        after = snapshot(finding) if finding else None
        time = finding.time if finding else scan.finished_at or scan.started_at
        changes += diff(
            before, after, ever_exposed=ever_exposed, ip=ip, port=port, scan_id=scan.id, time=time
        )
    return changes


def _previous(
    conn: Connection, places: Sequence[tuple[str, int]], scan: ScanRow
) -> dict[tuple[str, int], tuple[Snapshot | None, bool]]:
    """Of each of `places` seen before `scan`: its last observation before it (None: closed since), and
    whether it was ever exposed before. Two queries for them all."""
    earlier = and_(scans.c.started_at <= scan.started_at, scans.c.id != scan.id)
    newest = (
        func.row_number()
        .over(
            partition_by=(findings.c.ip, findings.c.port),
            order_by=(scans.c.started_at.desc(), findings.c.id.desc()),
        )
        .label("newest")
    )
    ranked = (  # every earlier observation, newest first per service; records are read for the newest only
        select(findings.c.id, scans.c.started_at, newest)
        .join(scans, scans.c.id == findings.c.scan_id)
        .where(bulk.among(conn, (findings.c.ip, findings.c.port), places), earlier)
        .subquery()
    )
    last = conn.execute(
        select(findings.c.ip, findings.c.port, findings.c.record, ranked.c.started_at)
        .join(ranked, ranked.c.id == findings.c.id)
        .where(ranked.c.newest == 1)
    )
    found = {(r.ip, r.port): r for r in last}
    if not found:
        return {}
    history: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for h in conn.execute(
        select(events.c.ip, events.c.port, events.c.type, scans.c.started_at)
        .join(scans, scans.c.id == events.c.scan_id)
        .where(bulk.among(conn, (events.c.ip, events.c.port), list(found)), earlier)
        .where(events.c.type.in_(("new_exposure", "reopened", "closed")))
    ):
        history.setdefault((h.ip, h.port), []).append((h.type, h.started_at))
    previous = {}
    for place, row in found.items():
        before = snapshot(Finding.from_record(row.record))
        seen_before = history.get(place, [])
        ever_exposed = before.exposed or any(kind != "closed" for kind, _ in seen_before)
        closed_since = any(kind == "closed" and when >= row.started_at for kind, when in seen_before)
        previous[place] = (None if closed_since else before), ever_exposed
    return previous
