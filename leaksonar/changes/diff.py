"""Consecutive snapshots of one service -> change events (pure functions).

A service's observations come from the scans that covered its address and port: a snapshot when it
answered, None when it did not. Thresholds (docs/monitoring.md):

- wiped: rows or size fell by at least WIPE_PERCENT, or none of the old collection names is left;
- shrunk / grew: rows (size when a row count is missing) changed by at least CHANGE_PERCENT;
- a partial inspection (one that reported errors) never makes a wiped or shrunk event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from leaksonar.changes.snapshot import Note, Snapshot
from leaksonar.formats import human_bytes, human_count
from leaksonar.model import EVENT_TYPES, Event, Software

WIPE_PERCENT = 90
CHANGE_PERCENT = 10

Change = tuple[str, str, dict[str, Any], dict[str, Any]]
"""(type, summary, before, after)."""


def diff(
    before: Snapshot | None,
    after: Snapshot | None,
    *,
    ever_exposed: bool,
    ip: str,
    port: int,
    scan_id: str,
    time: str,
) -> list[Event]:
    """The events between two consecutive observations of `ip:port` (None: not answering or never seen).

    `ever_exposed`: the service was seen exposed before (a new exposure is then `reopened`)."""
    current = after or before
    if current is None:
        return []
    severity = after.severity if after else None
    changes = sorted(_changes(before, after, ever_exposed), key=lambda c: EVENT_TYPES.index(c[0]))
    return [
        Event(ip, port, kind, time, scan_id, current.protocol, severity, summary, old, new)
        for kind, summary, old, new in changes
    ]


def _changes(before: Snapshot | None, after: Snapshot | None, ever_exposed: bool) -> list[Change]:
    if after is None:
        if before is None:
            return []
        return [("closed", f"no longer answers; {_was(before)}", _figures(before), {})]
    changes = _software(before, after) if before else []
    if not after.exposed:
        if before is not None and before.exposed and after.auth == "required":
            changes.append(
                ("auth_enabled", f"authentication now required; {_was(before)}", _figures(before), {})
            )
        return changes
    if before is None or not before.exposed:
        kind = "reopened" if ever_exposed else "new_exposure"
        changes.append((kind, f"exposed without authentication: {_describe(after)}", {}, _figures(after)))
        return changes
    return changes + _size(before, after) + _notes(before, after) + _pii(before, after)


# --- figures and words ---------------------------------------------------------------------------------


def _figures(s: Snapshot) -> dict[str, Any]:
    return {
        "exposed": s.exposed,
        "rows": s.rows,
        "size_bytes": s.size_bytes,
        "collections": len(s.collections),
        "pii": list(s.pii),
        "notes": len(s.notes),
    }


def _describe(s: Snapshot) -> str:
    parts = [f"{human_count(len(s.collections))} collections"]
    if s.rows is not None:
        parts.append(f"{human_count(s.rows)} rows")
    if s.size_bytes is not None:
        parts.append(human_bytes(s.size_bytes))
    if s.pii:
        parts.append("personal data: " + ", ".join(s.pii))
    if s.notes:
        parts.append(f"{len(s.notes)} ransom note{'s' * (len(s.notes) > 1)}")
    return ", ".join(parts)


def _was(s: Snapshot) -> str:
    return f"was exposed with {_describe(s)}" if s.exposed else f"was {s.protocol} with authentication"


def _software_text(software: Software) -> str:
    return " ".join(filter(None, (software.name, software.version)))


def _software(before: Snapshot, after: Snapshot) -> list[Change]:
    old, new = before.software, after.software
    if old is None or new is None or old == new or (new.name == old.name and new.version is None):
        return []  # a locked server may not say its version
    old_text, new_text = _software_text(old), _software_text(new)
    return [
        (
            "software_changed",
            f"software {old_text} -> {new_text}",
            {"software": old_text},
            {"software": new_text},
        )
    ]


def _change_text(label: str, old: int, new: int, show: Callable[[int], str]) -> str:
    change = (new - old) / old * 100 if old else None
    if change is not None and new and change < -99.9:
        change = -99.9  # something is left: not -100%
    percent = f" ({change:+.1f}%)" if change is not None else ""
    return f"{label} {show(old)} -> {show(new)}{percent}"


def _names(names: Iterable[str]) -> str:
    shown = sorted(names)
    return (
        ", ".join(shown[:3]) + (f" (+{len(shown) - 3} more)" if len(shown) > 3 else "") if shown else "none"
    )


def _size(before: Snapshot, after: Snapshot) -> list[Change]:
    old = {"rows": before.rows, "size_bytes": before.size_bytes}
    new = {"rows": after.rows, "size_bytes": after.size_bytes}
    measures = [
        (first, last, _change_text(label, first, last, show))
        for label, first, last, show in (
            ("rows", before.rows, after.rows, human_count),
            ("size", before.size_bytes, after.size_bytes, human_bytes),
        )
        if first is not None and last is not None
    ]
    if after.partial:  # what it did not list may still be there: only growth is certain
        measures = [m for m in measures if m[1] > m[0]]
    for first, last, text in measures:
        if first > 0 and 100 * (first - last) >= WIPE_PERCENT * first:
            return [("wiped", f"{text}: wiped", old, new)]
    if before.collections and not set(before.collections) & set(after.collections) and not after.partial:
        old["collections"], new["collections"] = sorted(before.collections), sorted(after.collections)
        summary = f"collections replaced: {_names(before.collections)} -> {_names(after.collections)}: wiped"
        return [("wiped", summary, old, new)]
    if not measures:
        return []
    first, last, text = measures[0]  # rows when counted, else size
    if last < first and 100 * (first - last) >= CHANGE_PERCENT * first:
        return [("shrunk", f"{text}: shrunk", old, new)]
    if last > first and 100 * (last - first) >= CHANGE_PERCENT * first:
        return [("grew", f"{text}: grew", old, new)]
    return []


def note_text(note: Note) -> str:
    """`index read_me: 10 BTC to 1Boat...` (the note's place and demand, never its text)."""
    demand = (
        f"{note.amount_btc:g} BTC" if note.amount_btc is not None else ("BTC" if note.btc_addresses else "")
    )
    if note.btc_addresses:
        demand += f" to {note.btc_addresses[0]}"
    return f"{note.where}: {demand}" if demand else note.where


def _notes(before: Snapshot, after: Snapshot) -> list[Change]:
    old = {n.where: n for n in before.notes}
    new = {n.where: n for n in after.notes}
    changes: list[Change] = []
    for kind, verb, notes in (
        ("ransom_note_appeared", "appeared in", [n for w, n in new.items() if w not in old]),
        ("ransom_note_removed", "removed from", [n for w, n in old.items() if w not in new]),
    ):
        if notes:
            more = f" (+{len(notes) - 1} more)" if len(notes) > 1 else ""
            summary = f"ransom note {verb} {note_text(notes[0])}{more}"
            changes.append((kind, summary, {"notes": sorted(old)}, {"notes": sorted(new)}))
    return changes


def _pii(before: Snapshot, after: Snapshot) -> list[Change]:
    added = sorted(set(after.pii) - set(before.pii))
    if not added:
        return []
    return [
        (
            "pii_added",
            "personal data added: " + ", ".join(added),
            {"pii": list(before.pii)},
            {"pii": list(after.pii)},
        )
    ]


# --- a service's exposure over time ------------------------------------------------------------------


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def days_exposed(events: Sequence[Event], last_seen: str) -> float:
    """Days between each exposure (new_exposure, reopened) and its end (closed, auth_enabled), or the last
    scan that saw the service when it is still exposed, summed."""
    total, since = 0.0, None
    for event in events:
        if event.type in ("new_exposure", "reopened") and since is None:
            since = _moment(event.time)
        elif event.type in ("closed", "auth_enabled") and since is not None:
            total += (_moment(event.time) - since).total_seconds()
            since = None
    if since is not None:
        total += max(0.0, (_moment(last_seen) - since).total_seconds())
    return round(total / 86400, 1)
