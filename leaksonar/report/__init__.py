"""Owner disclosure reports: letters per owner (Markdown, HTML), an owners file, a report history."""

from leaksonar.report.history import REMINDER_DAYS, History
from leaksonar.report.owners import Owner, Owners, OwnersError, load_owners
from leaksonar.report.report import (
    FORMATS,
    OwnerReport,
    ReportError,
    Selection,
    parse_formats,
    plan,
    write_reports,
)

__all__ = [
    "FORMATS",
    "REMINDER_DAYS",
    "History",
    "Owner",
    "OwnerReport",
    "Owners",
    "OwnersError",
    "ReportError",
    "Selection",
    "load_owners",
    "parse_formats",
    "plan",
    "write_reports",
]
