"""Reading and writing the index: scans, hosts, services (latest state) and per-scan findings."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Engine, case, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DatabaseError

from leaksonar.model import Finding
from leaksonar.store.schema import findings, hosts, metadata, scans, services

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


class Store:
    """The leaksonar index. Re-scanning updates hosts and services; findings are kept per scan."""

    def __init__(self, db: str | None = None) -> None:
        self.db = db or default_db()
        self.engine: Engine = create_engine(_url(self.db))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            metadata.create_all(self.engine)
        except DatabaseError as exc:
            raise StoreError(f"{self.db} is not a leaksonar index: {exc.orig}") from None

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def begin_scan(
        self, scan_id: str, started_at: str, targets: str, ports: str, size: int, options: dict[str, Any]
    ) -> None:
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
