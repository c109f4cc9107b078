"""Targets: parsing, host names, scope guard, blocklist and opt-out lists, and a pseudo-random walk of
target x port.

Addresses are handled as inclusive integer intervals of keys (`key`: an IPv4 address is its own integer,
an IPv6 address comes after all of them), so a /8 costs two integers, and the walk over (address, port)
pairs is a permutation computed on the fly: memory does not grow with the space. A host name among the
targets is resolved once, when the space is built, and its addresses go through the same scope guard,
blocklist and opt-outs as typed ones; the space remembers each address's name.
"""

from __future__ import annotations

import bisect
import ipaddress
import os
import queue
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from leaksonar.inputs import InputError

Interval = tuple[int, int]
"""Inclusive range of address keys (`key`)."""

V6 = 1 << 32
"""Key of the IPv6 address `::`: an IPv6 address's key is V6 + its integer, so IPv4 keys keep their values
and every interval, merge and walk serves both families."""
MAX_V6_TARGET = 1 << 20
"""Addresses of the largest IPv6 prefix or range enumerated as a target."""
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")

SCOPE_ENV = "LEAKSONAR_SCOPE"


class TargetError(ValueError):
    """Bad target, port, scope or list input; the message is one line naming what is wrong."""


class ScopeError(TargetError):
    """A target lies outside the allowed scope."""


def key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """The address's key: an IPv4 address as its integer, an IPv6 one as V6 + its integer. An IPv4-mapped
    IPv6 address (`::ffff:A.B.C.D`, as a resolver or another scanner may write one) is the IPv4 address it
    is, so the scope guard, blocklist and opt-outs see what a connection would reach."""
    if address.version == 4:
        return int(address)
    mapped = address.ipv4_mapped
    return int(mapped) if mapped is not None else V6 + int(address)


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4 or IPv6 address in any spelling (upper case, expanded, leading zeros), an IPv4-mapped one
    (`::ffff:10.0.0.1`) as the IPv4 address it is; ValueError for anything else, also a scoped IPv6
    address (`fe80::1%eth0`: never scanned, never indexed)."""
    found = ipaddress.ip_address(text.strip())
    if isinstance(found, ipaddress.IPv4Address):
        return found
    if found.scope_id is not None:
        raise ValueError(f"{text!r} has a zone")
    return found.ipv4_mapped or found


def text_key(text: str) -> int:
    """`text` (an IPv4 or IPv6 address, without a zone) as a key (`key`). Raises ValueError."""
    return key(parse_address(text))


def _address(text: str, reason: str = "is not an IPv4 address") -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        raise TargetError(reason) from None


_ZONE = "has a zone index (%...), which is not scanned"


def _v6_address(text: str, reason: str = "is not an IPv6 address") -> int:
    if "%" in text:
        raise TargetError(_ZONE)
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise TargetError(reason) from None
    if address in _MAPPED:
        raise TargetError("is an IPv4-mapped IPv6 address (give the IPv4 address)")
    return V6 + int(address)


def _v6_interval(text: str, kinds: str) -> Interval:
    if "/" in text:
        if "%" in text:
            raise TargetError(_ZONE)
        try:
            network = ipaddress.IPv6Network(text, strict=False)
        except ValueError:
            raise TargetError("is not a valid IPv6 prefix") from None
        if network.subnet_of(_MAPPED):
            raise TargetError("is an IPv4-mapped IPv6 prefix (give the IPv4 block)")
        return V6 + int(network.network_address), V6 + int(network.broadcast_address)
    if "-" in text:
        first_text, last_text = (part.strip() for part in text.split("-", 1))
        first = _v6_address(first_text, "has a range start that is not an IPv6 address")
        last = _v6_address(last_text, "has a range end that is not an IPv6 address")
        if last < first:
            raise TargetError("is a range that ends before it starts")
        if first <= V6 + int(_MAPPED.broadcast_address) and V6 + int(_MAPPED.network_address) <= last:
            raise TargetError("is a range that crosses the IPv4-mapped prefix ::ffff:0:0/96")
        return first, last
    address = _v6_address(text, f"is not {kinds}")
    return address, address


def _interval(text: str, kinds: str) -> Interval:
    """`text` as an interval; TargetError says what is wrong without quoting `text` ("is not ...", `kinds`
    naming what it could have been)."""
    if ":" in text:
        return _v6_interval(text, kinds)
    if "/" in text:
        try:
            network = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise TargetError("is not a valid IPv4 CIDR block") from None
        return int(network.network_address), int(network.broadcast_address)
    if not any(ch.isdigit() for ch in text) or text.split("-", 1)[0].count(".") != 3:
        raise TargetError(f"is not {kinds}")
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


ADDRESS_KINDS = "an IPv4 or IPv6 address, CIDR block or range"
TARGET_KINDS = "an IPv4 or IPv6 address, CIDR block, range or host name"


def parse_target(spec: str, kinds: str = ADDRESS_KINDS) -> Interval:
    """One target: `A.B.C.D`, `A.B.C.D/N` or a range `A.B.C.D-E.F.G.H` (or `A.B.C.D-H`); or an IPv6
    address, prefix (`fd00::/64`) or range (`fd00::1-fd00::ff`)."""
    text = spec.strip()
    if not text:
        raise TargetError("empty target")
    try:
        return _interval(text, kinds)
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
            intervals.append(_interval(spec, ADDRESS_KINDS))
        except TargetError as exc:
            raise InputError(path, number, f"a target {exc}") from None
    return intervals


_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE | re.ASCII)


def host_name(text: str) -> str | None:
    """`text` as a host name (lower case, without a final dot), or None when it is not one. A name has a
    dot (or is `localhost`) and its last label holds a letter, so no address, block or range (even a
    mistyped one) and no stray word of a targets file reads as a name and goes to the resolver."""
    name = (text[:-1] if text.endswith(".") else text).lower()
    labels = name.split(".")
    if len(name) > 253 or not all(map(_LABEL.fullmatch, labels)) or not re.search("[a-z]", labels[-1]):
        return None
    return name if len(labels) > 1 or name == "localhost" else None


def parse_resolve(spec: str) -> tuple[str, int]:
    """`--resolve NAME:ADDR` -> (name, address key): the address the name stands for, not looked up. The
    name ends at the first colon, so `db.example:fd00::1` names an IPv6 address."""
    name_text, _, address_text = spec.partition(":")
    name = host_name(name_text.strip())
    if name is None or not address_text:
        raise TargetError(f"--resolve {spec!r} is not NAME:ADDR (a host name, a colon, an IP address)")
    address_text = address_text.strip()
    try:
        if ":" in address_text:
            return name, _v6_address(address_text, "is not an IPv4 or IPv6 address")
        return name, _address(address_text, "is not an IPv4 or IPv6 address")
    except TargetError as exc:
        raise TargetError(f"--resolve {spec!r} has an address that {exc} (NAME:ADDR)") from None


RESOLVE_TIMEOUT = 10.0
"""Seconds allowed to resolve every name among the targets."""
RESOLVERS = 16
"""Names resolved at once."""


def _lookup(names: list[str], timeout: float) -> dict[str, list[str] | str]:
    """Name -> its addresses (A and AAAA, by the system's resolver, in its order) or why it has none.
    Daemon threads: a resolver that hangs past `timeout` delays nothing, not even the exit."""
    answers: dict[str, list[str] | str] = {}
    pending: queue.SimpleQueue[str] = queue.SimpleQueue()
    for name in names:
        pending.put(name)

    def resolve() -> None:
        while True:
            try:
                name = pending.get_nowait()
            except queue.Empty:
                return
            try:
                infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
                answers[name] = [str(info[4][0]) for info in infos]
            except (OSError, UnicodeError) as exc:
                answers[name] = getattr(exc, "strerror", None) or type(exc).__name__

    threads = [threading.Thread(target=resolve, daemon=True) for _ in range(min(RESOLVERS, len(names)))]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return {name: answers.get(name, f"no answer within {timeout:g} s") for name in names}


Origin = tuple[Path, int] | None
"""Where a target was given: a list file and its line, or None for the command line."""


def _at(path: Path, line: int) -> str:
    return f"{path}: line {line}"


def _refuse(name: str, origin: Origin, reason: str) -> TargetError | InputError:
    """The error about a name: by its file and line when it came from a list (a file is never quoted)."""
    if origin is None:
        return TargetError(f"name {name!r} {reason}")
    return InputError(*origin, f"a name {reason}")


def resolve_names(
    names: Mapping[str, Origin],
    resolved: Mapping[str, Iterable[int]],
    scope: Scope | None,
    warn: Callable[[str], None],
    timeout: float = RESOLVE_TIMEOUT,
) -> dict[int, str]:
    """Address -> name for `names` (each with where it was given), `resolved` ones (--resolve) taken as
    given, the others looked up once (A and AAAA answers); each name's addresses pass the scope guard. An
    address of two names keeps the first (one warning). Raises TargetError (InputError for a name from a
    list file)."""
    answers = _lookup([name for name in names if name not in resolved], timeout)
    named: dict[int, str] = {}
    for name, origin in names.items():
        if name in resolved:
            addresses = list(dict.fromkeys(resolved[name]))
        else:
            answer = answers[name]
            if isinstance(answer, str):
                raise _refuse(name, origin, f"does not resolve ({answer})")
            addresses = list(dict.fromkeys(text_key(text.partition("%")[0]) for text in answer))
            if not addresses:
                raise _refuse(name, origin, "resolves to no address")
        if scope is not None:  # a name from a list file is named by its place (a file is never quoted)
            scope.check(
                [(address, address) for address in addresses], name if origin is None else _at(*origin)
            )
        for address in addresses:
            first = named.setdefault(address, name)
            if first != name:
                warn(f"{ntoa(address)} is named {first} and {name}; it keeps {first} (one name per address)")
    return named


def stored_names(value: object) -> dict[str, str]:
    """Names as a space kept them (`dict(space.names)` in JSON): address -> name. Raises TargetError."""
    if not isinstance(value, dict) or not all(isinstance(x, str) for pair in value.items() for x in pair):
        raise TargetError("names are not address -> name strings")
    return value


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


_NAT64 = V6 + int(ipaddress.IPv6Address("64:ff9b::"))
"""Key of the NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): a gateway translates 64:ff9b::A.B.C.D to
the IPv4 address A.B.C.D."""


def default_blocklist() -> list[Interval]:
    """Reserved IPv4 and IPv6 space (leaksonar/data/blocklist.txt), and each reserved IPv4 block as the
    NAT64 well-known prefix writes it (64:ff9b::10.0.0.0/104: RFC 6052 forbids it, a gateway may still
    translate it to the IPv4 block)."""
    blocks = [parse_target(spec) for spec in _data_lines("blocklist.txt")]
    return merge([*blocks, *((_NAT64 + first, _NAT64 + last) for first, last in blocks if last < V6)])


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint, non-adjacent intervals covering the same addresses; none crosses from IPv4 to
    IPv6 (255.255.255.255 and :: are adjacent keys), so each is a target of one family."""
    merged: list[Interval] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + (first != V6):
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
    (the user named that reserved range on purpose, e.g. a loopback lab), each target judged alone: one
    named beside or inside a larger one is still named. Sorted and disjoint; a named range is never
    merged with the rest, so that each interval, judged again alone (a distributed shard rebuilt from
    them), is kept as it is."""
    named: list[Interval] = []
    rest: list[Interval] = []
    for target in targets:
        if any(b_first <= target[0] and target[1] <= b_last for b_first, b_last in blocklist):
            named.append(target)
        else:
            rest.extend(subtract([target], blocklist))
    return sorted(merge(named) + merge(rest))


def _format(interval: Interval) -> str:
    first, last = (ntoa(x) for x in interval)
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

    def contains(self, address: str) -> bool:
        return _within(self.intervals, text_key(address))

    def check(self, targets: Iterable[Interval], name: str | None = None) -> None:
        """Raise ScopeError naming the first target (part) outside the scope (and the `name` it came from)."""
        for target in targets:
            outside = subtract([target], list(self.intervals))
            if outside:
                named = f" ({name})" if name else ""
                raise ScopeError(
                    f"target {_format(outside[0])}{named} is outside the allowed scope {self.spec}"
                    f" (--scope / {SCOPE_ENV}); nothing was scanned"
                )


def _within(intervals: Sequence[Interval], address: int) -> bool:
    """Whether `address` lies in `intervals` (sorted and disjoint)."""
    slot = bisect.bisect_right(intervals, address, key=lambda interval: interval[0]) - 1
    return slot >= 0 and address <= intervals[slot][1]


class AddressFilter:
    """The scope guard, blocklist and opt-out lists for single addresses another scanner found (`scan
    --open-from`). Reserved space is skipped, but for the part of it the scope lies in when a scope block
    lies wholly inside one reserved block (named on purpose, as `apply_blocklist` keeps a target named
    wholly inside one: a loopback lab scoped to 127.0.0.0/8). Raises InputError for an opt-out list."""

    def __init__(
        self, scope: Scope | None, exclude_files: Iterable[Path] = (), blocklist: list[Interval] | None = None
    ) -> None:
        blocked = default_blocklist() if blocklist is None else blocklist
        if scope is not None:
            named = [s for s in scope.intervals if any(b[0] <= s[0] and s[1] <= b[1] for b in blocked)]
            blocked = subtract(blocked, named)
        excluded = merge(interval for path in exclude_files for interval in parse_list(path))
        self.scope = scope
        self.skipped = merge([*blocked, *excluded])

    def in_scope(self, address: str) -> bool:
        return self.scope is None or self.scope.contains(address)

    def skips(self, address: str) -> bool:
        """Whether `address` is reserved (not named on purpose) or opted out."""
        return _within(self.skipped, text_key(address))


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
    """The address of a key: dotted IPv4, or IPv6 in its compressed form."""
    if address < V6:
        return f"{address >> 24}.{(address >> 16) & 255}.{(address >> 8) & 255}.{address & 255}"
    return str(ipaddress.IPv6Address(address - V6))


def family(ip: str) -> socket.AddressFamily:
    """The socket family that reaches `ip`."""
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


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


def _parse_targets(
    specs: Iterable[str], list_files: Iterable[Path]
) -> tuple[list[Interval], dict[str, Origin]]:
    """The addresses, blocks and ranges, and the names (each with where it was first given) of the
    command line's `specs` and the `list_files`."""
    intervals: list[Interval] = []
    names: dict[str, Origin] = {}
    given: list[tuple[str, Origin]] = [(spec.strip(), None) for spec in specs]
    for path in list_files:
        given.extend((spec, (path, number)) for number, spec in read_list(path))
    for text, origin in given:
        if not text:
            raise TargetError("empty target")
        if (name := host_name(text)) is not None:
            names.setdefault(name, origin)
            continue
        try:
            first, last = _interval(text, TARGET_KINDS)
            if first >= V6 and last - first >= MAX_V6_TARGET:
                raise TargetError(
                    f"is an IPv6 prefix or range of more than {MAX_V6_TARGET:,} addresses (2^20): pass a list"
                    " of addresses with -iL, or the open ports another scanner found with --open-from"
                )
        except TargetError as exc:
            if origin is None:
                raise TargetError(f"target {text!r} {exc}") from None
            raise InputError(*origin, f"a target {exc}") from None
        intervals.append((first, last))
    return intervals, names


def build_space(
    specs: Iterable[str],
    ports: tuple[int, ...],
    *,
    list_files: Iterable[Path] = (),
    exclude_files: Iterable[Path] = (),
    scope: Scope | None = None,
    blocklist: list[Interval] | None = None,
    seed: int | None = None,
    resolve: Iterable[tuple[str, int]] = (),
    warn: Callable[[str], None] = lambda _: None,
) -> TargetSpace:
    """Parse, scope-check, resolve names (`resolve`: (name, address) pairs taken as given), block and
    exclude: the space a scan will walk. Raises TargetError (InputError for the list files)."""
    targets, names = _parse_targets(specs, list_files)
    if not targets and not names:
        raise TargetError("no targets given")
    if scope is not None:
        scope.check(targets)  # before any name is looked up
    resolved: dict[str, list[int]] = {}
    for name, address in resolve:
        resolved.setdefault(name, []).append(address)
    for unused in (name for name in resolved if name not in names):
        warn(f"--resolve {unused} ignored: the name is not among the targets")
    named = resolve_names(names, resolved, scope, warn) if names else {}
    targets.extend((address, address) for address in named)
    allowed = apply_blocklist(targets, default_blocklist() if blocklist is None else blocklist)
    excluded = merge(interval for path in exclude_files for interval in parse_list(path))
    space = subtract(allowed, excluded)
    starts = [first for first, _ in space]
    kept = {
        ntoa(address): name
        for address, name in named.items()
        if (slot := bisect.bisect_right(starts, address) - 1) >= 0 and address <= space[slot][1]
    }
    return TargetSpace(space, ports, seed, kept)
