"""Targets: parsing, scope guard, blocklist and opt-out lists, and a pseudo-random walk of target x port.

Addresses are handled as inclusive integer intervals, so a /8 costs two integers, and the walk over
(address, port) pairs is a permutation computed on the fly: memory does not grow with the space.
"""

from __future__ import annotations

import bisect
import ipaddress
import os
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from leaksonar.inputs import InputError

Interval = tuple[int, int]
"""Inclusive range of IPv4 addresses as integers."""

SCOPE_ENV = "LEAKSONAR_SCOPE"


class TargetError(ValueError):
    """Bad target, port, scope or list input; the message is one line naming what is wrong."""


class ScopeError(TargetError):
    """A target lies outside the allowed scope."""


def _address(text: str, reason: str = "is not an IPv4 address") -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        raise TargetError(reason) from None


def _interval(text: str) -> Interval:
    """`text` as an interval; TargetError says what is wrong without quoting `text` ("is not ...")."""
    if "/" in text:
        try:
            network = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise TargetError("is not a valid IPv4 CIDR block") from None
        return int(network.network_address), int(network.broadcast_address)
    if not any(ch.isdigit() for ch in text) or text.split("-", 1)[0].count(".") != 3:
        raise TargetError("is not an IPv4 address, CIDR block or range (names are not resolved)")
    if "-" in text:
        first_text, last_text = (part.strip() for part in text.split("-", 1))
        first = _address(first_text, "has a range start that is not an IPv4 address")
        if last_text.isdigit() and int(last_text) <= 255 and "." not in last_text:
            last = (first & ~0xFF) | int(last_text)
        else:
            last = _address(last_text, "has a range end that is not an IPv4 address")
        if last < first:
            raise TargetError("is a range that ends before it starts")
        return first, last
    address = _address(text)
    return address, address


def parse_target(spec: str) -> Interval:
    """One target: `A.B.C.D`, `A.B.C.D/N` or a range `A.B.C.D-E.F.G.H` (or `A.B.C.D-H`)."""
    text = spec.strip()
    if not text:
        raise TargetError("empty target")
    try:
        return _interval(text)
    except TargetError as exc:
        raise TargetError(f"target {spec!r} {exc}") from None


MAX_LIST_LINE = 1 << 16
"""Bytes of one line of a target or opt-out list."""


def read_list(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target spec) from a file: one or more specs a line (space or comma separated), `#`
    comments. Raises InputError."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(iter(lambda: handle.readline(MAX_LIST_LINE + 1), b""), 1):
            if len(line) > MAX_LIST_LINE:
                raise InputError(path, number, f"longer than {MAX_LIST_LINE:,} bytes")
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(path, number, "not UTF-8 text") from None
            for spec in text.split("#", 1)[0].replace(",", " ").split():
                yield number, spec


def parse_list(path: Path) -> list[Interval]:
    """The targets of a list file. Raises InputError naming the line, never quoting it."""
    intervals = []
    for number, spec in read_list(path):
        try:
            intervals.append(_interval(spec))
        except TargetError as exc:
            raise InputError(path, number, f"a target {exc}") from None
    return intervals


def parse_ports(spec: str) -> tuple[int, ...]:
    """`6379,5432,1-1024` -> sorted unique ports."""
    ports: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        low_text, _, high_text = part.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if high_text else low
        except ValueError:
            raise TargetError(f"port {part!r} is not a number or range") from None
        if not (1 <= low <= high <= 65535):
            raise TargetError(f"port range {part!r} must lie within 1-65535, low to high")
        ports.update(range(low, high + 1))
    if not ports:
        raise TargetError("no ports given")
    return tuple(sorted(ports))


def _data_lines(name: str) -> Iterator[str]:
    text = resources.files("leaksonar.data").joinpath(name).read_text(encoding="utf-8")
    for line in text.splitlines():
        if entry := line.split("#", 1)[0].strip():
            yield entry


def default_ports() -> tuple[int, ...]:
    """The curated list of database ports (leaksonar/data/ports.txt)."""
    return tuple(sorted({int(p) for p in _data_lines("ports.txt")}))


def default_blocklist() -> list[Interval]:
    """Reserved IPv4 space (leaksonar/data/blocklist.txt)."""
    return merge(parse_target(spec) for spec in _data_lines("blocklist.txt"))


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint, non-adjacent intervals covering the same addresses."""
    merged: list[Interval] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            if last > merged[-1][1]:
                merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def subtract(keep: list[Interval], remove: list[Interval]) -> list[Interval]:
    """`keep` minus `remove`; both sorted and disjoint (as `merge` returns)."""
    result: list[Interval] = []
    j = 0
    for first, last in keep:
        start = first
        while j < len(remove) and remove[j][1] < start:
            j += 1
        k = j
        while k < len(remove) and remove[k][0] <= last:
            if remove[k][0] > start:
                result.append((start, remove[k][0] - 1))
            start = max(start, remove[k][1] + 1)
            k += 1
        if start <= last:
            result.append((start, last))
    return result


def apply_blocklist(targets: list[Interval], blocklist: list[Interval]) -> list[Interval]:
    """Skip blocked space inside larger targets; keep a target that lies wholly inside one block
    (the user named that reserved range on purpose, e.g. a loopback lab)."""
    result: list[Interval] = []
    for target in merge(targets):
        inside_block = any(b_first <= target[0] and target[1] <= b_last for b_first, b_last in blocklist)
        result.extend([target] if inside_block else subtract([target], blocklist))
    return merge(result)


def _format(interval: Interval) -> str:
    first, last = (str(ipaddress.IPv4Address(x)) for x in interval)
    return first if first == last else f"{first}-{last}"


@dataclass(frozen=True)
class Scope:
    """The address space a scan may touch (`--scope` / LEAKSONAR_SCOPE)."""

    spec: str
    intervals: tuple[Interval, ...]

    @classmethod
    def parse(cls, spec: str) -> Scope:
        specs = spec.replace(",", " ").split()
        try:
            intervals = merge(parse_target(s) for s in specs)
        except TargetError as exc:
            raise TargetError(f"scope: {exc}") from None
        if not intervals:
            raise TargetError("scope is empty")
        return cls(spec, tuple(intervals))

    @classmethod
    def from_env(cls, explicit: str | None) -> Scope | None:
        spec = explicit if explicit is not None else os.environ.get(SCOPE_ENV)
        return cls.parse(spec) if spec else None

    def check(self, targets: Iterable[Interval]) -> None:
        """Raise ScopeError naming the first target (part) outside the scope."""
        for target in targets:
            outside = subtract([target], list(self.intervals))
            if outside:
                raise ScopeError(
                    f"target {_format(outside[0])} is outside the allowed scope {self.spec}"
                    f" (--scope / {SCOPE_ENV}); nothing was scanned"
                )


class Permutation:
    """range(n) in a pseudo-random order with O(1) memory.

    A full-period linear congruential walk over 2^k >= n, passed through an invertible bit mixer,
    skipping values >= n (cycle walking). Every value in range(n) comes out exactly once.
    The walk's steps can be split into shards (every `shards`-th step) and entered at any step: an
    affine map's k-th power is computed by squaring, so a start position costs O(k's bits).
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        bits = max(4, (n - 1).bit_length())
        rng = random.Random(seed)
        self.mask = (1 << bits) - 1
        self.a = (rng.getrandbits(bits) << 2 | 1) & self.mask  # a = 1 (mod 4): full period
        self.c = rng.getrandbits(bits) | 1  # odd increment: full period
        self.start = rng.getrandbits(bits)
        self.shift = bits // 2
        self.mul = rng.getrandbits(bits) | 1

    def __iter__(self) -> Iterator[int]:
        return (value for _, value in self.walk())

    def _power(self, k: int) -> tuple[int, int]:
        """(A, C) with x -> A*x + C equal to k steps of the walk."""
        mask, a, c = self.mask, self.a, self.c
        power_a, power_c = 1, 0
        while k:
            if k & 1:
                power_a, power_c = (a * power_a) & mask, (a * power_c + c) & mask
            a, c = (a * a) & mask, (a * c + c) & mask
            k >>= 1
        return power_a, power_c

    def shard_length(self, number: int, shards: int) -> int:
        """Steps of shard `number` of `shards` (values >= n included)."""
        return max(0, (self.mask - number) // shards + 1)

    def walk(self, number: int = 0, shards: int = 1, start: int = 0) -> Iterator[tuple[int, int]]:
        """(position, value): the values at steps number, number + shards, ... of the walk, from the
        shard's `start`-th step on. Shards partition range(n); a position counts the shard's steps."""
        mask, shift, mul, n = self.mask, self.shift, self.mul, self.n
        enter_a, enter_c = self._power(number + start * shards + 1)
        x = (enter_a * self.start + enter_c) & mask
        step_a, step_c = self._power(shards)
        for position in range(start, self.shard_length(number, shards)):
            y = x ^ (x >> shift)
            y = (y * mul) & mask
            y ^= y >> shift
            if y < n:
                yield position, y
            x = (step_a * x + step_c) & mask


def ntoa(address: int) -> str:
    return f"{address >> 24}.{(address >> 16) & 255}.{(address >> 8) & 255}.{address & 255}"


class TargetSpace:
    """Every (address, port) pair of the targets, walked in a seeded pseudo-random order."""

    def __init__(
        self,
        intervals: list[Interval],
        ports: tuple[int, ...],
        seed: int | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.intervals = intervals
        self.ports = ports
        self.names: Mapping[str, str] = names or {}
        """Address -> the name it was given by (sent as TLS SNI and HTTP Host, kept as `hostname`)."""
        self.seed = seed if seed is not None else random.SystemRandom().getrandbits(63)
        self._offsets: list[int] = []
        total = 0
        for first, last in intervals:
            self._offsets.append(total)
            total += last - first + 1
        self.addresses = total
        self.size = total * len(ports)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return self.shard(0, 1)

    def shard(self, number: int, shards: int) -> Iterator[tuple[str, int]]:
        """Shard `number` of `shards` (see `walk`) as (address, port) pairs: shards partition the space."""
        return ((ip, port) for ip, port, _ in self.walk(number, shards))

    def walk(self, number: int = 0, shards: int = 1, start: int = 0) -> Iterator[tuple[str, int, int]]:
        """(address, port, position) of shard `number` of `shards`, from position `start` on (a checkpoint,
        entered in O(1)). Positions rise along a shard: resuming at p walks what lies at p or later."""
        if not self.size:
            return
        ports, nports, offsets, intervals = self.ports, len(self.ports), self._offsets, self.intervals
        for position, index in Permutation(self.size, self.seed).walk(number, shards, start):
            address_index, port_index = divmod(index, nports)
            slot = bisect.bisect_right(offsets, address_index) - 1
            yield ntoa(intervals[slot][0] + address_index - offsets[slot]), ports[port_index], position

    def describe(self) -> str:
        return ", ".join(_format(i) for i in self.intervals[:5]) + (" ..." if len(self.intervals) > 5 else "")


def build_space(
    specs: Iterable[str],
    ports: tuple[int, ...],
    *,
    list_files: Iterable[Path] = (),
    exclude_files: Iterable[Path] = (),
    scope: Scope | None = None,
    blocklist: list[Interval] | None = None,
    seed: int | None = None,
) -> TargetSpace:
    """Parse, scope-check, block and exclude: the space a scan will walk. Raises TargetError (InputError for
    the list files)."""
    targets = [parse_target(spec) for spec in specs]
    for path in list_files:
        targets.extend(parse_list(path))
    if not targets:
        raise TargetError("no targets given")
    if scope is not None:
        scope.check(targets)
    allowed = apply_blocklist(targets, default_blocklist() if blocklist is None else blocklist)
    excluded = merge(interval for path in exclude_files for interval in parse_list(path))
    return TargetSpace(subtract(allowed, excluded), ports, seed)
