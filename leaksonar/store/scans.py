"""Scans: recorded when they start, checkpointed while they run, closed with their counters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from leaksonar.store.rows import ScanRow
from leaksonar.store.schema import scans
from leaksonar.store.sql import select_as


class Scans:
    """`store.scans`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def begin(
        self,
        scan_id: str,
        started_at: str,
        targets: str,
        ports: str,
        size: int,
        options: dict[str, Any],
        coverage: dict[str, Any] | None = None,
    ) -> None:
        """Record a running scan. `coverage`: {"intervals": [[first, last], ...] (addresses as keys,
        `leaksonar.targets`: IPv4 as its integer, IPv6 as 2**32 + its integer), "ports": [...], "names":
        {address: name}}, the space a finished scan looked at entirely (a service seen before and missing
        from it is closed)."""
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

    def _update(self, scan_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(scans.update().where(scans.c.id == scan_id).values(**values))

    def finish(self, scan_id: str, finished_at: str, status: str, **counts: int) -> None:
        """Close the scan with its status and counters (probes, open_ports, services, exposed)."""
        self._update(scan_id, finished_at=finished_at, status=status, **counts)

    def checkpoint(self, scan_id: str, checkpoint: dict[str, Any]) -> None:
        """Record how far a running scan got, in one UPDATE (atomic); `scan --resume` starts there."""
        self._update(scan_id, checkpoint=checkpoint)

    def set_source(self, scan_id: str, source: dict[str, Any]) -> None:
        """Replace where a scan's open ports come from (`ScanRow.source`), once known better (the format of
        standard input is known once it is read)."""
        with self.engine.begin() as conn:
            options = conn.execute(select(scans.c.options).where(scans.c.id == scan_id)).scalar_one()
            conn.execute(
                scans.update().where(scans.c.id == scan_id).values(options={**options, "source": source})
            )

    def reopen(self, scan_id: str) -> None:
        """Mark an unfinished scan running again (`scan --resume`)."""
        self._update(scan_id, status="running", finished_at=None)

    def get(self, scan_id: str) -> ScanRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select_as(ScanRow, scans).where(scans.c.id == scan_id)).first()
        return ScanRow(*row) if row else None

    def latest(self, limit: int = 100) -> list[ScanRow]:
        """Scans, newest first."""
        query = select_as(ScanRow, scans).order_by(scans.c.started_at.desc(), scans.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [ScanRow(*row) for row in conn.execute(query)]
