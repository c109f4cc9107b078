"""The report history: which service (ip:port) went to which owner, when, at which severity."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from leaksonar.store.rows import ReportRow
from leaksonar.store.schema import report_history
from leaksonar.store.sql import select_as


class Reports:
    """`store.reports`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def last(self, owner: str, service: str) -> ReportRow | None:
        """The last report of `service` to `owner`."""
        query = (
            select_as(ReportRow, report_history)
            .where(report_history.c.owner == owner, report_history.c.service == service)
            .order_by(report_history.c.sent_at.desc(), report_history.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return ReportRow(*row) if row else None

    def record(self, owner: str, sent: Sequence[tuple[str, str, str]], sent_at: str) -> None:
        """Note that the services of `sent` ((service, severity, scan_id)) went to `owner` at `sent_at`."""
        if not sent:
            return
        with self.engine.begin() as conn:
            conn.execute(
                report_history.insert(),
                [
                    {"owner": owner, "service": s, "severity": sev, "sent_at": sent_at, "scan_id": scan}
                    for s, sev, scan in sent
                ],
            )
