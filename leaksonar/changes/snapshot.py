"""A compact snapshot of one service as one scan saw it: what the change events are computed from.

Snapshots are derived from the finding records the index keeps per scan and service (pure functions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leaksonar.model import Auth, Finding, Severity, Software


@dataclass(frozen=True, slots=True)
class Note:
    """A ransom note or attack sign: where it is and what it asks (never its text)."""

    where: str
    btc_addresses: tuple[str, ...] = ()
    amount_btc: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    protocol: str
    auth: Auth
    exposed: bool
    software: Software | None = None
    rows: int | None = None
    size_bytes: int | None = None
    collections: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    """`database.name` (or `name`) -> (rows, size_bytes)."""
    pii: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()
    severity: Severity | None = None
    partial: bool = False
    """The inspection reported errors: what it did not list may still be there."""


def collection_key(database: str, name: str) -> str:
    return f"{database}.{name}" if database else name


def snapshot(finding: Finding) -> Snapshot:
    """The snapshot of one finding."""
    assessment = finding.assessment
    return Snapshot(
        protocol=finding.protocol,
        auth=finding.auth,
        exposed=finding.exposed,
        software=finding.software,
        rows=finding.rows,
        size_bytes=finding.size_bytes,
        collections={collection_key(c.database, c.name): (c.rows, c.size_bytes) for c in finding.collections},
        pii=tuple(sorted(assessment.pii)) if assessment else (),
        notes=tuple(Note(n.where, n.btc_addresses, n.amount_btc) for n in assessment.notes)
        if assessment
        else (),
        severity=assessment.severity if assessment else None,
        partial=bool(finding.errors),
    )
