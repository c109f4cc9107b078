"""Memcached (text protocol): recognised from `version`; inspected read-only.

Inspection sends `stats`, lists a few keys with `lru_crawler metadump all` (or, where that is refused,
`stats items` + `stats cachedump`), then reads their values with one bounded `get`.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any
from urllib.parse import unquote_to_bytes

from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols.base import (
    AuthRequired,
    BoundedStream,
    CommandRefused,
    Endpoint,
    ProtocolError,
    ReplyTooLarge,
)
from leaksonar.protocols.kit import Learned, count, decode_value, run_inspection, text, value_window

_MAX_LINE = 4096
_MAX_LINES = 10_000
_MAX_SLABS = 64
_VERSION = re.compile(rb"\AVERSION ([^\r\n]{1,64})\r\n")
_UNAUTHENTICATED = b"CLIENT_ERROR unauthenticated\r\n"
_ERRORS = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")
_STAT_LINE = re.compile(rb"\ASTAT (\S+) ?(.*)\Z")
_DUMP_LINE = re.compile(rb"\Akey=(\S+) .*?\bsize=(\d+)")
_CACHEDUMP_LINE = re.compile(rb"\AITEM (\S+) \[(\d+) b;")
_VALUE_LINE = re.compile(rb"\AVALUE (\S+) \d+ (\d+)(?: \d+)?\r\n\Z")
_KEY = re.compile(rb"[\x21-\x7e\x80-\xff]{1,250}")
"""A key `get` can ask for: 1-250 bytes, no spaces or control characters."""


class _Lines:
    """Reads the lines of one multi-line reply: at most `_MAX_LINES`, together within `limits.max_bytes`."""

    def __init__(self, stream: BoundedStream) -> None:
        self.stream = stream
        self.left = stream.limits.max_bytes
        self.count = 0

    async def next(self) -> bytes:
        """The next line without its terminator; CommandRefused for an error line."""
        line = await self.stream.read_line(_MAX_LINE)
        self.left -= len(line)
        self.count += 1
        if self.left < 0:
            raise ReplyTooLarge(f"reply over the {self.stream.limits.max_bytes}-byte cap")
        if self.count > _MAX_LINES:
            raise ReplyTooLarge(f"reply of more than {_MAX_LINES} lines")
        if line.startswith(_ERRORS):
            raise CommandRefused(line.strip().decode("utf-8", "replace"))
        return line.rstrip(b"\r\n")


async def _stats(stream: BoundedStream, command: bytes) -> dict[str, str]:
    """`STAT name value` lines of a stats command, up to END."""
    await stream.send(command + b"\r\n")
    lines, stats = _Lines(stream), {}
    while (line := await lines.next()) != b"END":
        if (stat := _STAT_LINE.match(line)) is None:
            raise ProtocolError(f"unexpected line {line[:40]!r} in a stats reply")
        stats[stat.group(1).decode("utf-8", "replace")] = stat.group(2).decode("utf-8", "replace")
    return stats


def _dump_key(match: re.Match[bytes] | None, decode: bool, size_cap: int) -> bytes | None:
    """The key of a metadump/cachedump line, if `get` can ask for it and its value is small enough."""
    if match is None or int(match.group(2)) > size_cap:
        return None
    key = unquote_to_bytes(match.group(1)) if decode else match.group(1)
    return key if _KEY.fullmatch(key) else None


async def _metadump_keys(stream: BoundedStream, want: int, size_cap: int) -> list[bytes]:
    """Up to `want` keys (URL-decoded); the dump is abandoned at the first line that is not a key."""
    await stream.send(b"lru_crawler metadump all\r\n")
    lines, keys = _Lines(stream), []
    while len(keys) < want and lines.left > _MAX_LINE:
        line = await lines.next()
        if not line.startswith(b"key="):
            if line == b"END" or keys:
                break
            raise CommandRefused(line[:80].decode("utf-8", "replace"))
        if (key := _dump_key(_DUMP_LINE.match(line), True, size_cap)) is not None:
            keys.append(key)
    return keys


async def _cachedump_keys(stream: BoundedStream, want: int, size_cap: int) -> list[bytes]:
    """Up to `want` keys from `stats cachedump`, slab class by slab class (older servers)."""
    items = await _stats(stream, b"stats items")
    slabs = sorted({int(n.split(":")[1]) for n in items if re.fullmatch(r"items:\d{1,3}:number", n)})
    slabs = slabs[:_MAX_SLABS]
    await stream.send(b"".join(b"stats cachedump %d %d\r\n" % (slab, want) for slab in slabs))
    keys: list[bytes] = []
    for _ in slabs:
        lines = _Lines(stream)
        while (line := await lines.next()) != b"END":
            if (key := _dump_key(_CACHEDUMP_LINE.match(line), False, size_cap)) is not None:
                keys.append(key)
    return keys[:want]


async def _get(stream: BoundedStream, keys: list[bytes], limits: Limits) -> dict[bytes, bytes]:
    """The first `value_window` bytes of each key's value, with the whole reply within `max_bytes`."""
    await stream.send(b"get " + b" ".join(keys) + b"\r\n")
    values: dict[bytes, bytes] = {}
    left = limits.max_bytes
    while (line := await stream.read_line(_MAX_LINE)) != b"END\r\n":
        if (match := _VALUE_LINE.match(line)) is None or len(values) >= len(keys):
            raise ProtocolError(f"unexpected line {line[:40]!r} in a get reply")
        size = int(match.group(2))
        if size + 2 > left:
            raise ReplyTooLarge(f"server announced {size} bytes, over the {limits.max_bytes}-byte cap")
        left -= size + 2
        values[match.group(1)] = await stream.read_bulk(size, value_window(limits))
    return values


async def _list_keys(stream: BoundedStream, limits: Limits) -> list[bytes]:
    """A few keys whose values are small enough to sample; an abandoned dump leaves `stream` unusable."""
    want = limits.sample_rows * 4
    size_cap = limits.max_bytes // want
    try:
        return await _metadump_keys(stream, want, size_cap)
    except CommandRefused:
        return await _cachedump_keys(stream, want, size_cap)


async def _sample(endpoint: Endpoint, limits: Limits) -> tuple[dict[str, Any], ...]:
    """Bounded documents for a few keys: one connection lists them, a fresh one reads them."""
    async with await BoundedStream.open(endpoint, limits) as stream:
        keys = await _list_keys(stream, limits)
    if not keys:
        return ()
    async with await BoundedStream.open(endpoint, limits) as stream:
        values = await _get(stream, keys, limits)
    return tuple(
        {"key": text(key, limits), "value": decode_value(values[key], limits)}
        for key in keys
        if key in values
    )


async def _read_stats(endpoint: Endpoint, learned: Learned) -> bool:
    """Software, auth and item counts from `stats`; False if the server refused it."""
    async with await BoundedStream.open(endpoint, learned.limits) as stream:
        try:
            stats = await _stats(stream, b"stats")
        except CommandRefused as exc:
            if "unauthenticated" in str(exc):
                raise AuthRequired(str(exc)) from exc
            learned.auth = "unknown"
            learned.add(ErrorKind.COMMAND_REFUSED, f"The stats command was refused: {exc}.")
            return False
    learned.auth = "none"
    learned.software = Software("memcached", stats.get("version") or None)
    learned.databases = 1
    learned.rows, learned.size_bytes = count(stats.get("curr_items")), count(stats.get("bytes"))
    return True


async def _inspect(endpoint: Endpoint, learned: Learned) -> None:
    if await _read_stats(endpoint, learned):
        sampling = _sample(endpoint, learned.limits)
        await learned.add_sampled("", "items", learned.rows, learned.size_bytes, sampling)


class MemcachedProtocol:
    name = "memcached"
    default_ports = (11211,)
    probe = b"version\r\n"

    def match(self, reply: bytes) -> Identity | None:
        """memcached's answer to `version`, or its refusal when ASCII authentication is on."""
        if reply.startswith(_UNAUTHENTICATED):
            return Identity(self.name, Software("memcached"), "required", _UNAUTHENTICATED.strip().decode())
        if (version := _VERSION.match(reply)) is None:
            return None
        release = version.group(1).decode("utf-8", "replace")
        return Identity(self.name, Software("memcached", release), "none", f"VERSION {release}")

    async def inspect(self, endpoint: Endpoint, identity: Identity, limits: Limits) -> Inspection:
        """Item count, bytes and a bounded sample of items; read-only, never raises."""
        steps = partial(_inspect, endpoint)
        return await run_inspection(self.name, steps, identity, limits, Software("memcached"))


PROTOCOL = MemcachedProtocol()
