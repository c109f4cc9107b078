"""Plain-text units shared by every output (one convention: SI, 1000-based): byte sizes, counts, and
durations given on the command line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"(?:(\d+)([smhdw]))+")
_PART = re.compile(r"(\d+)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DAYS = 36_500
"""Longest duration accepted (about 100 years): `watch --every`, `--since 7d` and the like."""


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h`, `1h30m`, `7d`, `2w` -> a positive duration of at most MAX_DAYS; ValueError
    otherwise."""
    spec = text.strip().lower()
    if not _DURATION.fullmatch(spec):
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 1h, 1h30m, 7d")
    parts = _PART.findall(spec)
    longest = MAX_DAYS * _SECONDS["d"]
    if any(len(n.lstrip("0")) > len(str(longest)) for n, _ in parts):
        raise ValueError(f"{text!r} is longer than {MAX_DAYS:,} days")
    seconds = sum(int(n.lstrip("0") or "0") * _SECONDS[unit] for n, unit in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    if seconds > longest:
        raise ValueError(f"{text!r} is longer than {MAX_DAYS:,} days")
    return timedelta(seconds=seconds)


def utc_now() -> str:
    """Now, as the index keeps times (`2026-11-28T05:00:00Z`)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_since(text: str, now: datetime | None = None) -> str:
    """`7d` / `24h` (ago) or an ISO 8601 date or time -> the UTC time the index compares with
    (`2026-11-28T05:00:00Z`); ValueError for anything else, or a time outside the years 1 to 9999 in UTC."""
    spec = text.strip()
    if _DURATION.fullmatch(spec.lower()):
        moment = (now or datetime.now(UTC)) - parse_duration(spec)
    else:
        try:
            moment = datetime.fromisoformat(spec.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{text!r} is neither an ISO 8601 time nor a duration (7d, 24h)") from None
        try:
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{text!r} is outside the years 1 to 9999 in UTC") from None
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _scaled(value: float, units: tuple[str, ...]) -> str:
    """`value` in the largest 1000-fold unit it reaches: one decimal below 10 (1.2B), none above (970M)."""
    unit = 0
    while round(value) >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    number = f"{value:.1f}".removesuffix(".0") if value < 10 and unit else f"{value:.0f}"
    return f"{number}{units[unit]}"


def human_bytes(size: int | None) -> str:
    """Bytes in SI units: 512 B, 1 kB, 16 MB, 23 GB, 1.2 TB; "-" when unknown."""
    return "-" if size is None else _scaled(size, (" B", " kB", " MB", " GB", " TB", " PB", " EB"))


def human_count(count: int | None) -> str:
    """7,040 / 970M / 1.2B: grouped digits below a million, then M, B, T; "-" when unknown."""
    if count is None:
        return "-"
    return f"{count:,}" if abs(count) < 1_000_000 else _scaled(count / 1_000_000, ("M", "B", "T"))


def human_rows(rows: int | None, estimated: bool = False) -> str:
    """A row count as human_count writes it, after "~" when it is the server's estimate (~970M)."""
    return f"~{human_count(rows)}" if estimated and rows is not None else human_count(rows)


def address_port(ip: str, port: int) -> str:
    """A service's address and port: `127.0.0.1:9200`, an IPv6 address in brackets (`[fd00::1]:9200`)."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
