"""Findings: recorded per scan, and as the latest state of each host and service (with its search
columns and tables); read back one at a time, per scan, or as a host's timeline."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, select

from leaksonar.model import Finding
from leaksonar.store import bulk
from leaksonar.store import search as views
from leaksonar.store.addresses import address_key
from leaksonar.store.query import public_only
from leaksonar.store.rows import FindingRow, HistoryPoint
from leaksonar.store.schema import findings, hosts, services
from leaksonar.store.sql import select_as


class Findings:
    """`store.findings`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, batch: Sequence[Finding]) -> None:
        """Record findings of one scan: per-scan rows, and the latest state of each host and service."""
        if not batch:
            return
        with self.engine.begin() as conn:
            _add(conn, batch)
        views.fold_summary(self.engine)

    def of_scan(self, scan_id: str) -> Iterator[Finding]:
        """The scan's findings, in the order they were stored."""
        query = select(findings.c.record).where(findings.c.scan_id == scan_id).order_by(findings.c.id)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                yield Finding.from_record(row.record)

    def get(self, finding_id: int, *, public: bool = False) -> FindingRow | None:
        """The stored finding with this id (`public`: None when it is not in the visible set)."""
        if abs(finding_id) > views.MAX_ROW_ID:
            return None
        query = select_as(FindingRow, findings).where(findings.c.id == finding_id)
        if public:
            query = query.where(public_only(findings))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return FindingRow(*row) if row else None

    def history(self, ip: str, port: int | None = None, *, public: bool = False) -> list[HistoryPoint]:
        """One point per stored finding of `ip` (or `ip:port`), oldest first (`public`: of the visible set
        only)."""
        query = select(findings).where(findings.c.ip == ip).order_by(findings.c.time, findings.c.id)
        if port is not None:
            query = query.where(findings.c.port == port)
        if public:
            query = query.where(public_only(findings))
        with self.engine.connect() as conn:
            return [_point(row) for row in conn.execute(query)]


def _point(row: Any) -> HistoryPoint:
    record = row.record
    dataset = record.get("dataset") or {}
    return HistoryPoint(
        id=row.id,
        port=row.port,
        protocol=record["protocol"],
        time=row.time,
        scan_id=row.scan_id,
        rows=dataset.get("rows"),
        size_bytes=dataset.get("size_bytes"),
        severity=record.get("severity"),
        exposed=record["exposed"],
        infected=bool((record.get("ransom") or {}).get("infected")),
    )


def _add(conn: Connection, batch: Sequence[Finding]) -> None:
    """Upsert hosts, services (with their search columns) and findings, one statement per table for the
    whole batch (`bulk`), in address and port order (a later finding of the same service wins; a host is
    seen first and last at the earliest and latest of its findings); then the search tables. One order for
    every transaction: two workers storing batches that share hosts lock those rows in the same order, so
    neither deadlocks the other."""
    batch = sorted(batch, key=lambda finding: (finding.ip, finding.port))  # stable: batch order per service
    records = [finding.to_record() for finding in batch]
    host_rows: dict[str, dict[str, Any]] = {}
    service_rows, finding_rows = [], []
    for finding, record in zip(batch, records, strict=True):
        stored = json.dumps(record)
        ip_key = address_key(finding.ip)
        seen = {"last_seen": finding.time, "last_scan_id": finding.scan_id}
        place = {"ip": finding.ip, "port": finding.port}
        software = finding.software
        host = host_rows.get(finding.ip)
        if host is None:
            host_rows[finding.ip] = {"ip": finding.ip, "ip_key": ip_key, "first_seen": finding.time, **seen}
        else:  # a host's ports come in port order: seen first at the earliest, last at the latest of them
            host["first_seen"] = min(host["first_seen"], finding.time)
            if finding.time >= host["last_seen"]:
                host.update(seen)
        service_rows.append(
            {
                **place,
                "ip_key": ip_key,
                "first_seen": finding.time,
                "protocol": finding.protocol,
                "software": views.clip(software.name, views.SERVICE_COLUMNS["software"])
                if software
                else None,
                "version": views.clip(software.version, views.SERVICE_COLUMNS["version"])
                if software
                else None,
                "auth": finding.auth,
                "exposed": finding.exposed,
                "rows": views.int64(finding.rows),
                "size_bytes": views.int64(finding.size_bytes),
                "severity": record.get("severity"),
                "record": stored,
                **seen,
                **views.search_columns(record),
            }
        )
        finding_rows.append({**place, "scan_id": finding.scan_id, "time": finding.time, "record": stored})
    places = list(dict.fromkeys((finding.ip, finding.port) for finding in batch))
    bulk.write(conn, hosts, list(host_rows.values()), ("ip",), kept=("first_seen",))
    with views.counting(conn):
        before = views.facet_state(conn, places)
        bulk.write(conn, services, service_rows, ("ip", "port"), kept=("first_seen",))
        bulk.write(conn, findings, finding_rows, ("scan_id", "ip", "port"))
        views.write_search(conn, records, before)
    views.refresh_statistics(conn)
