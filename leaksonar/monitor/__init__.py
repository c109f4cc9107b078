"""History and monitoring: snapshots, change events (diff), watch, alerts.

This module holds what the command line needs of it: durations (`--every 1h`, `--since 7d`) and events
rendered as lines or a Rich table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from rich.table import Table
from rich.text import Text

from leaksonar.model import Event

_DURATION = re.compile(r"(?:(\d+)([smhdw]))+")
_PART = re.compile(r"(\d+)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `1h30m`, `7d`, `2w` -> a positive duration; ValueError otherwise."""
    spec = text.strip().lower()
    if not _DURATION.fullmatch(spec):
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 1h, 1h30m, 7d")
    seconds = sum(int(n) * _SECONDS[unit] for n, unit in _PART.findall(spec))
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


def parse_since(text: str, now: datetime | None = None) -> str:
    """`7d` / `24h` (ago) or an ISO 8601 date or time -> the UTC time the index compares with."""
    try:
        moment = (now or datetime.now(UTC)) - parse_duration(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{text!r} is neither an ISO 8601 time nor a duration (7d, 24h)") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_line(event: Event) -> str:
    """`2026-11-28T05:00:00Z 127.0.0.1:6379 wiped: rows 1,221 -> 12 (-99.0%): wiped` (plain text)."""
    return f"{event.time} {event.ip}:{event.port} {event.type}: {event.summary}"


def events_table(events: Iterable[Event], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("time", "address", "protocol", "event", "severity", "summary"):
        table.add_column(column)
    for event in events:
        table.add_row(
            event.time,
            f"{event.ip}:{event.port}",
            event.protocol,
            event.type,
            event.severity or "-",
            Text(event.summary),
        )
    return table
