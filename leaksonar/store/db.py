"""Reading and writing the index: scans, hosts, services (latest state) and per-scan findings."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Engine, and_, case, create_engine, event, func, inspect, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DatabaseError

from leaksonar.model import Event, Finding
from leaksonar.monitor.diff import diff
from leaksonar.monitor.snapshot import Snapshot, snapshot
from leaksonar.store.schema import deliveries, findings, hosts, metadata, scans, services
from leaksonar.store.schema import events as event_log

DB_ENV = "LEAKSONAR_DB"


class StoreError(Exception):
    """The index cannot be opened or read; the message is one line."""


def default_db() -> str:
    """`LEAKSONAR_DB`, else leaksonar.db in the user's data directory."""
    return os.environ.get(DB_ENV) or str(Path(platformdirs.user_data_dir("leaksonar")) / "leaksonar.db")


def _url(db: str) -> str:
    if "://" in db:
        return db
    path = Path(db).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory for {db}: {exc.strerror}") from None
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _delivery(key: str, rule: str, channel: str) -> tuple[Any, ...]:
    return (deliveries.c.event_key == key, deliveries.c.rule == rule, deliveries.c.channel == channel)


def _add_missing_columns(engine: Engine) -> None:
    """Add the (nullable) columns a newer schema has to an index made by an older leaksonar."""
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    kind = column.type.compile(engine.dialect)
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


class Store:
    """The leaksonar index. Re-scanning updates hosts and services; findings are kept per scan."""

    def __init__(self, db: str | None = None) -> None:
        self.db = db or default_db()
        self.engine: Engine = create_engine(_url(self.db))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            metadata.create_all(self.engine)
            _add_missing_columns(self.engine)
        except DatabaseError as exc:
            raise StoreError(f"{self.db} is not a leaksonar index: {exc.orig}") from None

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

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

    def add_findings(self, batch: Sequence[Finding]) -> None:
        """Record findings of one scan: per-scan rows, and the latest state of each host and service."""
        if not batch:
            return
        with self.engine.begin() as conn:
            for finding in batch:
                self._add(conn, finding)

    def _add(self, conn: Any, finding: Finding) -> None:
        record = finding.to_record()
        ip_num = int(ipaddress.IPv4Address(finding.ip))
        seen = {"last_seen": finding.time, "last_scan_id": finding.scan_id}
        host = self._insert(hosts).values(ip=finding.ip, ip_num=ip_num, first_seen=finding.time, **seen)
        conn.execute(host.on_conflict_do_update(index_elements=["ip"], set_=seen))
        state = {
            "protocol": finding.protocol,
            "software": finding.software.name if finding.software else None,
            "version": finding.software.version if finding.software else None,
            "auth": finding.auth,
            "exposed": finding.exposed,
            "rows": finding.rows,
            "size_bytes": finding.size_bytes,
            "severity": record.get("severity"),
            "record": record,
            **seen,
        }
        service = self._insert(services).values(
            ip=finding.ip, ip_num=ip_num, port=finding.port, first_seen=finding.time, **state
        )
        conn.execute(service.on_conflict_do_update(index_elements=["ip", "port"], set_=state))
        row = self._insert(findings).values(
            scan_id=finding.scan_id, ip=finding.ip, port=finding.port, time=finding.time, record=record
        )
        conn.execute(
            row.on_conflict_do_update(
                index_elements=["scan_id", "ip", "port"], set_={"time": finding.time, "record": record}
            )
        )

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
            raise StoreError(f"no scan {scan_id} in {self.db}")
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
    ) -> list[Event]:
        """Stored events, oldest first: the newest `limit` of those at or after `since` (ISO 8601)."""
        query = select(event_log).order_by(event_log.c.id.desc()).limit(limit)
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
        return [Event(**row._mapping) for row in reversed(rows)]

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
