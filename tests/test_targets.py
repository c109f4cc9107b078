"""Target parsing, permutation, blocklist, opt-out lists and the scope guard (pure: no traffic)."""

from __future__ import annotations

import ipaddress
import itertools
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leaksonar.inputs import InputError
from leaksonar.targets import (
    Permutation,
    Scope,
    ScopeError,
    TargetError,
    apply_blocklist,
    build_space,
    default_blocklist,
    default_ports,
    merge,
    parse_ports,
    parse_target,
    subtract,
)

LOOPBACK = Scope.parse("127.0.0.0/8")


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("127.77.0.0/24", "127.77.0.0", "127.77.0.255"),
        ("127.77.0.9/24", "127.77.0.0", "127.77.0.255"),
        ("127.0.0.5-127.0.1.2", "127.0.0.5", "127.0.1.2"),
        ("127.0.0.5-20", "127.0.0.5", "127.0.0.20"),
    ],
)
def test_target_forms(spec: str, first: str, last: str) -> None:
    assert parse_target(spec) == (ip(first), ip(last))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("localhost", "not an IPv4 or IPv6 address"),
        ("127.0.0.300", "not an IPv4 address"),
        ("127.0.0.0/33", "not a valid IPv4 CIDR"),
        ("127.0.0.9-127.0.0.1", "ends before it starts"),
        ("", "empty target"),
        ("fd00::/129", "not a valid IPv6 prefix"),
        ("fd00::g", "not an IPv4 or IPv6 address"),
        ("fd00::9-fd00::1", "ends before it starts"),
        ("fe80::1%lo", "zone index"),
        ("fe80::%lo/120", "zone index"),  # in a prefix too: not dropped, so scanned without it
        ("::ffff:127.0.0.1", "IPv4-mapped IPv6 address"),
        ("::ffff:7f00:0/120", "IPv4-mapped IPv6 prefix"),
        ("::fffe:ffff:ffff-::ffff:0:1", "IPv4-mapped IPv6 address"),
        ("::fffe:0:0-::1:0:0:0", "crosses the IPv4-mapped prefix"),
    ],
)
def test_bad_targets_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        parse_target(spec)


def test_ports() -> None:
    assert parse_ports("6379,5432,1-3,3") == (1, 2, 3, 5432, 6379)
    assert {3306, 5432, 6379, 11211, 27017, 9200} <= set(default_ports())
    for bad in ("0", "70000", "5-1", "x", ","):
        with pytest.raises(TargetError):
            parse_ports(bad)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=1, max_value=5000), seed=st.integers(min_value=0, max_value=2**63))
def test_permutation_visits_every_index_once(n: int, seed: int) -> None:
    assert sorted(Permutation(n, seed)) == list(range(n))


def test_permutation_is_seeded_and_shuffled() -> None:
    order = list(Permutation(10_000, 7))
    assert order == list(Permutation(10_000, 7))
    assert order != list(Permutation(10_000, 8))
    ascending = sum(1 for a, b in itertools.pairwise(order) if b == a + 1)
    assert ascending < 100  # neighbours in the order are rarely neighbours in the space


def test_space_walks_every_pair_once_in_random_order() -> None:
    space = build_space(["127.77.0.0/28", "127.77.1.5"], (6379, 5432, 3306), scope=LOOPBACK, seed=1)
    pairs = list(space)
    assert len(pairs) == len(space) == 17 * 3
    assert Counter(pairs).most_common(1)[0][1] == 1
    assert ("127.77.1.5", 3306) in pairs
    assert pairs[:3] != [("127.77.0.0", 3306), ("127.77.0.0", 5432), ("127.77.0.0", 6379)]


def test_space_memory_does_not_depend_on_size() -> None:
    space = build_space(["127.0.0.0/8"], default_ports(), scope=LOOPBACK, seed=3)
    assert len(space) == 2**24 * len(default_ports())
    first = next(iter(space))
    assert first[0].startswith("127.")
    assert len(space.intervals) == 1


def test_merge_and_subtract() -> None:
    assert merge([(5, 9), (1, 3), (4, 4), (20, 30)]) == [(1, 9), (20, 30)]
    assert subtract([(1, 100)], [(10, 19), (50, 200)]) == [(1, 9), (20, 49)]
    assert subtract([(1, 5), (10, 15)], [(3, 11)]) == [(1, 2), (12, 15)]
    assert subtract([(1, 5)], []) == [(1, 5)]


def test_blocklist_skips_reserved_space_inside_a_larger_range_only() -> None:
    block = [parse_target("127.77.0.128/25")]
    # named explicitly (wholly inside the block): scanned
    assert apply_blocklist([parse_target("127.77.0.200/29")], block) == [parse_target("127.77.0.200/29")]
    # inside a larger range: skipped
    assert apply_blocklist([parse_target("127.77.0.0/24")], block) == [parse_target("127.77.0.0/25")]
    # named explicitly as well as inside or beside a larger target: still scanned, each judged alone
    both = [parse_target("127.77.0.0/24"), parse_target("127.77.0.200/29")]
    assert apply_blocklist(both, block) == [parse_target("127.77.0.0/25"), parse_target("127.77.0.200/29")]
    lab, beside = parse_target("fc00::/120"), parse_target("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
    assert apply_blocklist([lab, beside], default_blocklist()) == [beside, lab]  # each its own interval


def test_default_blocklist_covers_reserved_space() -> None:
    blocked = default_blocklist()
    # These addresses are only compared, never contacted.
    everything = apply_blocklist([parse_target("0.0.0.0/0")], blocked)
    total = sum(last - first + 1 for first, last in everything)
    assert total < 2**32 - 2**24 * 3  # at least 10/8, 127/8, 224/4 ... gone
    for reserved in ("10.1.2.3", "127.0.0.1", "192.168.1.1", "224.0.0.1", "172.16.5.5"):
        assert not any(first <= ip(reserved) <= last for first, last in everything)
    assert apply_blocklist([parse_target("127.77.0.0/24")], blocked) == [parse_target("127.77.0.0/24")]


def test_exclude_file_is_always_applied(tmp_path: Path) -> None:
    optout = tmp_path / "optout.txt"
    optout.write_text("# owners who asked not to be scanned\n127.77.0.0/30, 127.77.0.10\n")
    space = build_space(["127.77.0.0/28"], (6379,), exclude_files=[optout], scope=LOOPBACK)
    addresses = {address for address, _ in space}
    assert len(addresses) == 16 - 4 - 1
    assert "127.77.0.2" not in addresses and "127.77.0.10" not in addresses


def test_input_list_and_bad_entries(tmp_path: Path) -> None:
    good = tmp_path / "targets.txt"
    good.write_text("127.77.0.1\n127.77.0.8/31 # two\n\n")
    assert build_space([], (1,), list_files=[good], scope=LOOPBACK).addresses == 3
    bad = tmp_path / "bad.txt"
    bad.write_text("127.77.0.1\nnot-an-ip!\n")
    with pytest.raises(
        InputError, match=r"bad.txt: line 2: a target is not an IPv4 or IPv6 address"
    ) as caught:
        build_space([], (1,), list_files=[bad], scope=LOOPBACK)
    assert "not-an-ip" not in str(caught.value)
    with pytest.raises(InputError, match="cannot read"):
        build_space([], (1,), list_files=[tmp_path / "missing.txt"], scope=LOOPBACK)


def test_scope_guard_refuses_targets_outside() -> None:
    # Checked by the target code alone: no engine runs, nothing is sent.
    with pytest.raises(ScopeError, match=r"target 10\.0\.0\.1 is outside the allowed scope 127\.0\.0\.0/8"):
        build_space(["127.0.0.1", "10.0.0.1"], (6379,), scope=LOOPBACK)
    with pytest.raises(ScopeError, match=r"126\.255\.255\.255"):
        build_space(["126.255.255.255-127.0.0.3"], (6379,), scope=LOOPBACK)
    with pytest.raises(TargetError, match="scope"):
        Scope.parse("everything")


def test_scope_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKSONAR_SCOPE", "127.77.0.0/16")
    scope = Scope.from_env(None)
    assert scope is not None and scope.intervals == (parse_target("127.77.0.0/16"),)
    assert Scope.from_env("127.0.0.0/8") == LOOPBACK


def test_shards_partition_the_space() -> None:
    space = build_space(["127.77.0.0/26"], (6379, 5432), scope=LOOPBACK, seed=5)
    shards = [list(space.shard(k, 3)) for k in range(3)]
    assert sorted(pair for shard in shards for pair in shard) == sorted(space)
    assert all(abs(len(shard) - len(space) / 3) <= 1 for shard in shards)
