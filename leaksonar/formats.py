"""Plain-text units shared by every output: byte sizes, counts, and durations given on the command line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_count(count: int | None) -> str:
    return "-" if count is None else f"{count:,}"
