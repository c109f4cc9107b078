"""Change events: computed once per scan from the previous observation of each service it saw (or, when
it covered a space, should have seen), stored, and read back by filters or as a cursor."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from leaksonar.changes.diff import diff
from leaksonar.changes.snapshot import Snapshot, snapshot
from leaksonar.model import Event, Finding
from leaksonar.store import StoreError
from leaksonar.store import search as views
from leaksonar.store.query import public_only
from leaksonar.store.rows import ScanRow
from leaksonar.store.scans import Scans
from leaksonar.store.schema import events, findings, scans, services
from leaksonar.store.sql import insert


class Events:
    """`store.events`. `index`: how messages name the index."""

    def __init__(self, engine: Engine, scans: Scans, index: str) -> None:
        self.engine, self.scans, self.index = engine, scans, index

    def record(self, scan_id: str) -> list[Event]:
        """Diff every service the scan saw, and (when it finished) every service seen before in the space
        it covered, against its previous observation; store the changes once. Returns the scan's events."""
        scan = self.scans.get(scan_id)
        if scan is None:
            raise StoreError(f"no scan {scan_id} in {self.index}")
        with self.engine.begin() as conn:
            query = select(findings.c.ip, findings.c.port, findings.c.record).where(
                findings.c.scan_id == scan_id
            )
            seen = {(r.ip, r.port): Finding.from_record(r.record) for r in conn.execute(query)}
            places = set(seen)
            if scan.status == "done" and scan.coverage:
                places |= _covered(conn, scan.coverage)
            changes: list[Event] = []
            for ip, port in sorted(places, key=lambda p: (ipaddress.IPv4Address(p[0]), p[1])):
                before, ever_exposed = _previous(conn, ip, port, scan)
                finding = seen.get((ip, port))
                after = snapshot(finding) if finding else None
                time = finding.time if finding else scan.finished_at or scan.started_at
                changes += diff(
                    before, after, ever_exposed=ever_exposed, ip=ip, port=port, scan_id=scan_id, time=time
                )
            for change in changes:
                values = {k: v for k, v in change.to_record().items() if k != "id"}
                conn.execute(insert(conn, events).values(**values).on_conflict_do_nothing())
        return self.find(scan_id=scan_id)

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


def _covered(conn: Connection, coverage: dict[str, Any]) -> set[tuple[str, int]]:
    """Indexed services whose address and port lie in a scan's coverage."""
    ports = set(coverage["ports"])
    places: set[tuple[str, int]] = set()
    for first, last in coverage["intervals"]:
        rows = conn.execute(
            select(services.c.ip, services.c.port).where(services.c.ip_num.between(first, last))
        )
        places.update((r.ip, r.port) for r in rows if r.port in ports)
    return places


def _previous(conn: Connection, ip: str, port: int, scan: ScanRow) -> tuple[Snapshot | None, bool]:
    """The service's last observation before `scan` (None: never seen, or closed since), and whether it
    was ever exposed before."""
    earlier = and_(scans.c.started_at <= scan.started_at, scans.c.id != scan.id)
    last = conn.execute(
        select(findings.c.record, scans.c.started_at)
        .join(scans, scans.c.id == findings.c.scan_id)
        .where(findings.c.ip == ip, findings.c.port == port, earlier)
        .order_by(scans.c.started_at.desc(), findings.c.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return None, False
    before = snapshot(Finding.from_record(last.record))
    history = conn.execute(
        select(events.c.type, scans.c.started_at)
        .join(scans, scans.c.id == events.c.scan_id)
        .where(events.c.ip == ip, events.c.port == port, earlier)
        .where(events.c.type.in_(("new_exposure", "reopened", "closed")))
    ).all()
    ever_exposed = before.exposed or any(h.type != "closed" for h in history)
    closed_since = any(h.type == "closed" and h.started_at >= last.started_at for h in history)
    return (None if closed_since else before), ever_exposed
