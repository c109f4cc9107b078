"""Reading and writing the index: scans, hosts, services (latest state) and per-scan findings."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Engine, and_, case, create_engine, event, func, make_url, or_, select
from sqlalchemy.exc import DatabaseError

from leaksonar.changes.diff import diff
from leaksonar.changes.snapshot import Snapshot, snapshot
from leaksonar.model import Event, Finding
from leaksonar.store import DB_ENV
from leaksonar.store import search as views
from leaksonar.store.query import FACET_FIELDS
from leaksonar.store.schema import deliveries, findings, hosts, scans, services
from leaksonar.store.schema import events as event_log


class StoreError(Exception):
    """The index cannot be opened or read; the message is one line."""


def default_db() -> str:
    """`LEAKSONAR_DB`, else leaksonar.db in the user's data directory."""
    return os.environ.get(DB_ENV) or str(Path(platformdirs.user_data_dir("leaksonar")) / "leaksonar.db")


def _url(db: str) -> str:
    scheme, found, rest = db.partition("://")
    if found and scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"  # psycopg 3, not SQLAlchemy's default psycopg2
    if found and scheme == "sqlite":
        return db
    if found:
        raise StoreError(f"{scheme}:// is not a database leaksonar uses: give a file or a postgresql:// URL")
    path = Path(db).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory for {db}: {exc.strerror}") from None
    return f"sqlite:///{path}"


def _shown(db: str) -> str:
    """`db` for a message: a URL without its password."""
    return make_url(db).render_as_string(hide_password=True) if "://" in db else db


def _unreadable(db: str, exc: DatabaseError) -> StoreError:
    """The one-line error for an index that cannot be opened."""
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    return StoreError(f"{_shown(db)} is not a leaksonar index: {reason}")


def schema_revision(db: str | None = None) -> str | None:
    """The index's schema revision, read without migrating it (None: empty, or made by the release
    before migrations)."""
    from leaksonar.store.migrations import current

    db = db or default_db()
    engine = create_engine(_url(db))
    try:
        with engine.connect() as conn:
            return current(conn)
    except DatabaseError as exc:
        raise _unreadable(db, exc) from None
    finally:
        engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages: large indexes stay in memory
    cursor.close()


def _delivery(key: str, rule: str, channel: str) -> tuple[Any, ...]:
    return (deliveries.c.event_key == key, deliveries.c.rule == rule, deliveries.c.channel == channel)


class Store:
    """The leaksonar index. Re-scanning updates hosts and services; findings are kept per scan."""

    def __init__(self, db: str | None = None) -> None:
        self.db = db or default_db()
        self.engine: Engine = create_engine(_url(self.db))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        from leaksonar.store.migrations import SchemaError, upgrade

        try:
            upgrade(self.engine)
            views.prepare(self.engine)
        except DatabaseError as exc:
            raise _unreadable(self.db, exc) from None
        except SchemaError as exc:
            raise StoreError(f"{_shown(self.db)}: {exc}") from None

    def _insert(self, table: Any) -> Any:
        if self.engine.dialect.name == "postgresql":  # its dialect module is loaded only for such an index
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def begin_scan(
        self,
        scan_id: str,
        started_at: str,
        targets: str,
        ports: str,
        size: int,
        options: dict[str, Any],
        coverage: dict[str, Any] | None = None,
    ) -> None:
        """`coverage`: {"intervals": [[first, last], ...] (addresses as integers), "ports": [...]}, the
        space a finished scan looked at entirely (a service seen before and missing from it is closed)."""
        with self.engine.begin() as conn:
            conn.execute(
                scans.insert().values(
                    id=scan_id,
                    started_at=started_at,
                    status="running",
                    targets=targets,
                    ports=ports,
                    size=size,
                    probes=0,
                    open_ports=0,
                    services=0,
                    exposed=0,
                    options=options,
                    coverage=coverage,
                )
            )

    def finish_scan(self, scan_id: str, finished_at: str, status: str, **counts: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                scans.update()
                .where(scans.c.id == scan_id)
                .values(finished_at=finished_at, status=status, **counts)
            )

    def checkpoint_scan(self, scan_id: str, checkpoint: dict[str, Any]) -> None:
        """Record how far a running scan got, in one UPDATE (atomic); `scan --resume` starts there."""
        with self.engine.begin() as conn:
            conn.execute(scans.update().where(scans.c.id == scan_id).values(checkpoint=checkpoint))

    def reopen_scan(self, scan_id: str) -> None:
        """Mark an unfinished scan running again (`scan --resume`)."""
        with self.engine.begin() as conn:
            conn.execute(
                scans.update().where(scans.c.id == scan_id).values(status="running", finished_at=None)
            )

    def add_findings(self, batch: Sequence[Finding]) -> None:
        """Record findings of one scan: per-scan rows, and the latest state of each host and service."""
        if not batch:
            return
        with self.engine.begin() as conn:
            self._add(conn, batch)

    def _add(self, conn: Any, batch: Sequence[Finding]) -> None:
        """Upsert hosts, services (with their search columns) and findings, one executemany per table for
        the whole batch (in batch order: a later finding of the same service wins); then the search tables."""
        records = [finding.to_record() for finding in batch]
        host_rows, service_rows, finding_rows = [], [], []
        for finding, record in zip(batch, records, strict=True):
            stored = json.dumps(record)
            ip_num = int(ipaddress.IPv4Address(finding.ip))
            seen = {"last_seen": finding.time, "last_scan_id": finding.scan_id}
            place = {"ip": finding.ip, "port": finding.port}
            software = finding.software
            host_rows.append({"ip": finding.ip, "ip_num": ip_num, "first_seen": finding.time, **seen})
            service_rows.append(
                {
                    **place,
                    "ip_num": ip_num,
                    "first_seen": finding.time,
                    "protocol": finding.protocol,
                    "software": views.clip(software.name, services.c.software) if software else None,
                    "version": views.clip(software.version, services.c.version) if software else None,
                    "auth": finding.auth,
                    "exposed": finding.exposed,
                    "rows": finding.rows,
                    "size_bytes": finding.size_bytes,
                    "severity": record.get("severity"),
                    "record": stored,
                    **seen,
                    **views.search_columns(record),
                }
            )
            finding_rows.append({**place, "scan_id": finding.scan_id, "time": finding.time, "record": stored})
        for table, keys, rows in (
            (hosts, ("ip",), host_rows),
            (services, ("ip", "port"), service_rows),
            (findings, ("scan_id", "ip", "port"), finding_rows),
        ):

            def upsert(table: Any = table, keys: tuple[str, ...] = keys, rows: list[Any] = rows) -> Any:
                insert = self._insert(table)
                kept = (*keys, "first_seen")
                update = {name: insert.excluded[name] for name in rows[0] if name not in kept}
                return insert.on_conflict_do_update(index_elements=list(keys), set_=update)

            views.executemany(conn, f"upsert {table.name}", upsert, rows)
        views.write_search(conn, records)
        views.refresh_statistics(conn)

    def hosts(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Hosts with their service counts and protocols, most exposed first, then by address."""
        exposed = func.sum(case((services.c.exposed, 1), else_=0))
        protocols = (
            func.string_agg(services.c.protocol, ",")
            if self.engine.dialect.name == "postgresql"
            else func.group_concat(services.c.protocol, ",")
        )
        query = (
            select(
                hosts.c.ip,
                hosts.c.first_seen,
                hosts.c.last_seen,
                func.count(services.c.id).label("services"),
                exposed.label("exposed"),
                protocols.label("protocols"),
            )
            .join(services, services.c.ip == hosts.c.ip)
            .group_by(hosts.c.ip, hosts.c.ip_num, hosts.c.first_seen, hosts.c.last_seen)
            .order_by(exposed.desc(), hosts.c.ip_num)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def services(self, ip: str, port: int | None = None) -> list[dict[str, Any]]:
        """Latest state of each service on `ip` (or the one on `ip:port`)."""
        query = select(services).where(services.c.ip == ip).order_by(services.c.port)
        if port is not None:
            query = query.where(services.c.port == port)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def scan(self, scan_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(scans).where(scans.c.id == scan_id)).first()
            return dict(row._mapping) if row else None

    def scan_findings(self, scan_id: str) -> Iterator[Finding]:
        with self.engine.connect() as conn:
            for row in conn.execute(
                select(findings.c.record).where(findings.c.scan_id == scan_id).order_by(findings.c.id)
            ):
                yield Finding.from_record(row.record)

    def record_events(self, scan_id: str) -> list[Event]:
        """Diff every service the scan saw, and (when it finished) every service seen before in the space
        it covered, against its previous observation; store the changes once. Returns the scan's events."""
        scan = self.scan(scan_id)
        if scan is None:
            raise StoreError(f"no scan {scan_id} in {_shown(self.db)}")
        with self.engine.begin() as conn:
            query = select(findings.c.ip, findings.c.port, findings.c.record).where(
                findings.c.scan_id == scan_id
            )
            seen = {(r.ip, r.port): Finding.from_record(r.record) for r in conn.execute(query)}
            places = set(seen)
            if scan["status"] == "done" and scan["coverage"]:
                places |= _covered(conn, scan["coverage"])
            changes: list[Event] = []
            for ip, port in sorted(places, key=lambda p: (ipaddress.IPv4Address(p[0]), p[1])):
                before, ever_exposed = _previous(conn, ip, port, scan)
                finding = seen.get((ip, port))
                after = snapshot(finding) if finding else None
                time = finding.time if finding else scan["finished_at"] or scan["started_at"]
                changes += diff(
                    before, after, ever_exposed=ever_exposed, ip=ip, port=port, scan_id=scan_id, time=time
                )
            for change in changes:
                values = {k: v for k, v in change.to_record().items() if k != "id"}
                conn.execute(self._insert(event_log).values(**values).on_conflict_do_nothing())
        return self.events(scan_id=scan_id)

    def events(
        self,
        *,
        since: str | None = None,
        types: Sequence[str] = (),
        ip: str | None = None,
        port: int | None = None,
        scan_id: str | None = None,
        limit: int | None = None,
        after_id: int | None = None,
    ) -> list[Event]:
        """Stored events, oldest first: the newest `limit` of those at or after `since` (ISO 8601); with
        `after_id`, the oldest `limit` of those stored after that event (a cursor)."""
        newest_first = after_id is None
        order = event_log.c.id.desc() if newest_first else event_log.c.id
        query = select(event_log).order_by(order).limit(limit)
        if after_id is not None:
            query = query.where(event_log.c.id > min(after_id, views.MAX_ROW_ID))
        for column, value in (
            (event_log.c.ip, ip),
            (event_log.c.port, port),
            (event_log.c.scan_id, scan_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(event_log.c.time >= since)
        if types:
            query = query.where(event_log.c.type.in_(types))
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
        return [Event(**row._mapping) for row in (reversed(rows) if newest_first else rows)]

    # the read side (leaksonar.store.search) -----------------------------------------------------

    def search(
        self, query: str, *, limit: int = 50, offset: int = 0, now: datetime | None = None
    ) -> views.SearchPage:
        """Services matching `query` (docs/search.md), most severe first; QueryError for a bad query."""
        return views.search(self.engine, query, limit=limit, offset=offset, now=now)

    def facets(
        self, query: str, fields: Sequence[str] = FACET_FIELDS, top: int = 10, *, now: datetime | None = None
    ) -> dict[str, list[tuple[str, int]]]:
        """The `top` values of each facet field among the services matching `query`."""
        return views.facets(self.engine, query, fields, top, now=now)

    def host(self, ip: str) -> dict[str, Any] | None:
        return views.host(self.engine, ip)

    def history(self, ip: str, port: int | None = None) -> list[dict[str, Any]]:
        return views.history(self.engine, ip, port)

    def finding(self, finding_id: int) -> dict[str, Any] | None:
        return views.finding(self.engine, finding_id)

    def event(self, event_id: int) -> Event | None:
        return views.event(self.engine, event_id)

    def stats(self) -> dict[str, Any]:
        return views.stats(self.engine)

    def scans(self, limit: int = 100) -> list[dict[str, Any]]:
        return views.scan_list(self.engine, limit)

    def claim_delivery(
        self, key: str, event_id: int | None, rule: str, channel: str, now: str, stale: str
    ) -> bool:
        """Take the delivery of event `key` by `rule` to `channel`, unless it was sent or is being sent
        (a claim older than `stale` is taken over). Atomic, so concurrent runs never send twice."""
        where = _delivery(key, rule, channel)
        ids = {"event_key": key, "event_id": event_id, "rule": rule, "channel": channel}
        with self.engine.begin() as conn:
            claim = self._insert(deliveries).values(**ids, attempts=0, status="sending", time=now)
            if conn.execute(claim.on_conflict_do_nothing()).rowcount == 1:
                return True
            retake = (
                deliveries.update()
                .where(*where)
                .where(
                    or_(
                        deliveries.c.status == "failed",
                        and_(deliveries.c.status == "sending", deliveries.c.time < stale),
                    )
                )
                .values(status="sending", time=now, event_id=event_id)
            )
            return conn.execute(retake).rowcount == 1

    def finish_delivery(
        self, key: str, rule: str, channel: str, status: str, attempts: int, error: str | None, now: str
    ) -> None:
        """Record the outcome of a claimed delivery; attempts add up over runs."""
        with self.engine.begin() as conn:
            conn.execute(
                deliveries.update()
                .where(*_delivery(key, rule, channel))
                .values(status=status, attempts=deliveries.c.attempts + attempts, last_error=error, time=now)
            )

    def deliveries(self) -> list[dict[str, Any]]:
        """The delivery log, oldest first."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(deliveries).order_by(deliveries.c.id))]


def _covered(conn: Any, coverage: dict[str, Any]) -> set[tuple[str, int]]:
    """Indexed services whose address and port lie in a scan's coverage."""
    ports = set(coverage["ports"])
    places: set[tuple[str, int]] = set()
    for first, last in coverage["intervals"]:
        rows = conn.execute(
            select(services.c.ip, services.c.port).where(services.c.ip_num.between(first, last))
        )
        places.update((r.ip, r.port) for r in rows if r.port in ports)
    return places


def _previous(conn: Any, ip: str, port: int, scan: dict[str, Any]) -> tuple[Snapshot | None, bool]:
    """The service's last observation before `scan` (None: never seen, or closed since), and whether it
    was ever exposed before."""
    earlier = and_(scans.c.started_at <= scan["started_at"], scans.c.id != scan["id"])
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
        select(event_log.c.type, scans.c.started_at)
        .join(scans, scans.c.id == event_log.c.scan_id)
        .where(event_log.c.ip == ip, event_log.c.port == port, earlier)
        .where(event_log.c.type.in_(("new_exposure", "reopened", "closed")))
    ).all()
    ever_exposed = before.exposed or any(h.type != "closed" for h in history)
    closed_since = any(h.type == "closed" and h.started_at >= last.started_at for h in history)
    return (None if closed_since else before), ever_exposed
