"""Report history (kept by the index: `store.reports`): when a finding is due to be reported again.

Reminder intervals by severity: critical 3 days, high 7, medium 30; low and info are reported once and
never reminded. A service whose severity rose since the last report is due at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from leaksonar.model import SEVERITY_RANK

if TYPE_CHECKING:
    from leaksonar.store.db import Store

REMINDER_DAYS: dict[str, int | None] = {"critical": 3, "high": 7, "medium": 30, "low": None, "info": None}


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Decision:
    due: bool
    reason: str
    """Why it is sent (first report, reminder, severity rose, forced) or why it is skipped."""


class History:
    """When the services reported to owners are due again, by the report history of one index."""

    def __init__(self, store: Store) -> None:
        self.reports = store.reports

    def decide(self, owner: str, service: str, severity: str, now: str, force: bool) -> Decision:
        last = self.reports.last(owner, service)
        if last is None:
            return Decision(True, "first report")
        if force:
            return Decision(True, "forced")
        before, sent_at = last.severity, last.sent_at
        if SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(before, 0):
            return Decision(True, f"severity rose from {before} to {severity}")
        days = REMINDER_DAYS.get(severity)
        if days is None:
            return Decision(False, f"reported {sent_at}; no reminders at severity {severity}")
        due_at = _time(sent_at) + timedelta(days=days)
        if _time(now) >= due_at:
            return Decision(True, f"reminder ({days} days after {sent_at})")
        return Decision(False, f"reported {sent_at}; next reminder after {due_at:%Y-%m-%dT%H:%M:%SZ}")
