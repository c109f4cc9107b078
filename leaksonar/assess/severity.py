"""Severity of one service, from the table in docs/severity.md (DESIGN.md's table is its floor).

The first row that applies, from the top:
    info      not exposed: authentication required, or unknown (not a database, or not inspected)
    critical  a sensitive category in a collection of >= 100 rows, or attacked and holding personal data
    high      any personal data, any ransom/attack sign, or a file named as a database dump, a secret or
              an export of personal data (file stores: `assess.filenames`)
    medium    data (rows > 0, or documents sampled), no personal data
    low       empty, or metadata only
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from leaksonar.model import Inspection, PiiHit, Severity

SENSITIVE = frozenset(
    {"national_id", "passport", "payment_card", "bank_account", "password", "secret", "case_record"}
)
"""Categories that make a service critical once found in a collection of CRITICAL_ROWS rows or more."""

CRITICAL_ROWS = 100


def _sensitive_mass(inspection: Inspection, collection_pii: Mapping[tuple[str, str], Iterable[str]]) -> bool:
    """A sensitive category found in a collection whose server-side row count is >= CRITICAL_ROWS."""
    rows = {(c.database, c.name): c.rows for c in inspection.collections}
    return any(
        (rows.get(place) or 0) >= CRITICAL_ROWS and not SENSITIVE.isdisjoint(categories)
        for place, categories in collection_pii.items()
    )


def _holds_data(inspection: Inspection) -> bool:
    """Rows reported (for the service or any collection), or documents sampled."""
    return (
        (inspection.rows or 0) > 0
        or any((c.rows or 0) > 0 for c in inspection.collections)
        or any(s.documents for s in inspection.samples)
    )


def severity(
    inspection: Inspection,
    pii: Mapping[str, PiiHit],
    collection_pii: Mapping[tuple[str, str], Iterable[str]],
    infected: bool,
    named_files: Mapping[str, Sequence[str]] | None = None,
) -> Severity:
    """The severity of one service (see the module's table); `named_files`: category -> the files of a
    file store named for it."""
    if not inspection.exposed:
        return "info"
    if (infected and pii) or _sensitive_mass(inspection, collection_pii):
        return "critical"
    if pii or infected or named_files:
        return "high"
    return "medium" if _holds_data(inspection) else "low"
