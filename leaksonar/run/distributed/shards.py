"""Shards of a distributed scan: shard k of n is every n-th step of the space's seeded walk from step k
(`TargetSpace.walk`), which the walk enters directly, so a shard costs only its own share of it.

A shard travels as its space (intervals, ports, seed, scope, the names resolved when the scan was submitted,
never looked up again) and its number: O(1) to describe, apart from the names. The
shards of one space partition it: every (address, port) pair is in exactly one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from leaksonar.targets import (
    MAX_V6_TARGET,
    V6,
    Interval,
    Scope,
    TargetError,
    TargetSpace,
    build_space,
    ntoa,
    stored_names,
)


class ShardSpace(TargetSpace):
    """Shard `part` of `parts` of a target space. `size` and `describe` are the whole space's; walking it
    (`walk(k, n)`, as the engine does) walks shard k of n of this shard only."""

    def __init__(
        self,
        intervals: list[Interval],
        ports: tuple[int, ...],
        seed: int,
        part: int,
        parts: int,
        names: Mapping[str, str],
    ) -> None:
        super().__init__(intervals, ports, seed, names)
        self.part, self.parts = part, parts

    def walk(self, number: int = 0, shards: int = 1, start: int = 0) -> Iterator[tuple[str, int, int]]:
        return super().walk(self.part + number * self.parts, shards * self.parts, start)


def describe(space: TargetSpace, scope: Scope | None) -> dict[str, Any]:
    """What a worker needs to rebuild `space` (JSON): its intervals as target specs, ports, seed, scope and
    the addresses' names."""
    return {
        "targets": [spec for first, last in space.intervals for spec in _specs(first, last)],
        "ports": list(space.ports),
        "seed": space.seed,
        "scope": scope.spec if scope else None,
        "names": dict(space.names),
    }


def _specs(first: int, last: int) -> list[str]:
    """An interval as target ranges; IPv6 in pieces a target may be (MAX_V6_TARGET addresses at most)."""
    step = MAX_V6_TARGET if first >= V6 else last - first + 1
    return [f"{ntoa(start)}-{ntoa(min(start + step - 1, last))}" for start in range(first, last + 1, step)]


def rebuild(described: dict[str, Any], part: int, parts: int, own_scope: Scope | None) -> ShardSpace:
    """The shard, rebuilt by the same code as a local scan's space (`build_space`: scope guard and
    blocklist), checked against the submitter's scope and this worker's own; its names as the submitter
    resolved them. Raises TargetError."""
    ports = tuple(int(p) for p in described["ports"])
    scope = Scope.parse(described["scope"]) if described["scope"] else None
    space = build_space(described["targets"], ports, scope=scope, seed=int(described["seed"]))
    if own_scope is not None:
        own_scope.check(space.intervals)
    if describe(space, None)["targets"] != described["targets"]:
        raise TargetError("the shard's targets include blocked space (the blocklists differ); refused")
    if not 0 <= part < parts:
        raise TargetError(f"shard {part} of {parts} does not exist")
    names = stored_names(described.get("names", {}))
    return ShardSpace(space.intervals, space.ports, space.seed, part, parts, names)
