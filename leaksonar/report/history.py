"""Report history: which finding went to which owner, when, at which severity; and when a reminder is due.

Reminder intervals by severity: critical 3 days, high 7, medium 30; low and info are reported once and
never reminded. A service whose severity rose since the last report is due at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Engine, Index, Integer, String, Table, insert, select

from leaksonar.model import SEVERITY_RANK
from leaksonar.store.schema import metadata

REMINDER_DAYS: dict[str, int | None] = {"critical": 3, "high": 7, "medium": 30, "low": None, "info": None}

report_history = Table(
    "report_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(200), nullable=False),
    Column("service", String(24), nullable=False),  # ip:port
    Column("severity", String(8), nullable=False),
    Column("sent_at", String(20), nullable=False),
    Column("scan_id", String(40), nullable=False),
    Index("ix_report_history_owner_service", "owner", "service"),
)
"""One row per service per report sent (part of the index's schema, created on first use)."""


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Decision:
    due: bool
    reason: str
    """Why it is sent (first report, reminder, severity rose, forced) or why it is skipped."""


class History:
    """The report history table of one index."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        report_history.create(engine, checkfirst=True)

    def last(self, owner: str, service: str) -> tuple[str, str] | None:
        """(severity, sent_at) of the last report of `service` to `owner`."""
        query = (
            select(report_history.c.severity, report_history.c.sent_at)
            .where(report_history.c.owner == owner, report_history.c.service == service)
            .order_by(report_history.c.sent_at.desc(), report_history.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return (row.severity, row.sent_at) if row else None

    def decide(self, owner: str, service: str, severity: str, now: str, force: bool) -> Decision:
        last = self.last(owner, service)
        if last is None:
            return Decision(True, "first report")
        if force:
            return Decision(True, "forced")
        before, sent_at = last
        if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(before, 0):
            return Decision(True, f"severity rose from {before} to {severity}")
        days = REMINDER_DAYS.get(severity)
        if days is None:
            return Decision(False, f"reported {sent_at}; no reminders at severity {severity}")
        due_at = _time(sent_at) + timedelta(days=days)
        if _time(now) >= due_at:
            return Decision(True, f"reminder ({days} days after {sent_at})")
        return Decision(False, f"reported {sent_at}; next reminder after {due_at:%Y-%m-%dT%H:%M:%SZ}")

    def record(self, owner: str, rows: list[tuple[str, str, str]], sent_at: str) -> None:
        """Note that `rows` ((service, severity, scan_id)) went to `owner` at `sent_at`."""
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(report_history),
                [
                    {"owner": owner, "service": s, "severity": sev, "sent_at": sent_at, "scan_id": scan}
                    for s, sev, scan in rows
                ],
            )
