"""IPv6 targets: addresses and prefixes parsed, enumerated, refused, blocked and scope-checked; and a scan of
real servers bound to ULA addresses, run in a private network namespace (loopback only, so nothing could
leave the machine even were the scope guard broken)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from leaksonar.cli.common import split_address
from leaksonar.formats import address_port
from leaksonar.inputs import InputError
from leaksonar.protocols.base import Endpoint
from leaksonar.run.distributed.shards import describe, rebuild
from leaksonar.store.db import Store
from leaksonar.targets import (
    V6,
    AddressFilter,
    Scope,
    ScopeError,
    TargetError,
    build_space,
    parse_resolve,
)
from leaksonar.web.app import create_app
from tests.conftest import jsonl_records, leaksonar
from tests.test_api import UNLIMITED

ULA = Scope.parse("fd00::/64")


def test_addresses_and_prefixes_are_walked_in_compressed_form() -> None:
    space = build_space(
        ["fd00:0:0:0::1", "fd00::10/126", "127.0.0.1"], (6379,), scope=Scope.parse("fd00::/64 127.0.0.0/8")
    )
    assert sorted(ip for ip, _ in space) == [
        "127.0.0.1",
        "fd00::1",
        "fd00::10",
        "fd00::11",
        "fd00::12",
        "fd00::13",
    ]
    assert space.describe() == "127.0.0.1, fd00::1, fd00::10-fd00::13"


def test_an_ipv4_key_keeps_its_value_and_ipv6_comes_after() -> None:
    space = build_space(["127.0.0.1", "fd00::1"], (1,), scope=Scope.parse("127.0.0.0/8 fd00::/64"))
    assert space.intervals == [(0x7F000001, 0x7F000001), (V6 + (0xFD << 120) + 1, V6 + (0xFD << 120) + 1)]


def test_a_prefix_of_2_20_is_enumerated_and_a_larger_one_refused_with_the_hint(tmp_path: Path) -> None:
    assert build_space(["fd00::/108"], (1,), scope=ULA).addresses == 1 << 20
    with pytest.raises(TargetError) as refused:
        build_space(["fd00::/107"], (1,), scope=ULA)
    message = str(refused.value)
    assert "\n" not in message and "fd00::/107" in message
    assert "more than 1,048,576 addresses" in message and "-iL" in message and "--open-from" in message
    listed = tmp_path / "targets.txt"
    listed.write_text("fd00::1\nfd00::/64\n")
    with pytest.raises(
        InputError, match=r"targets.txt: line 2: a target is an IPv6 prefix or range of more than"
    ):
        build_space([], (1,), list_files=[listed], scope=ULA)


def test_list_files_and_opt_outs_take_ipv6(tmp_path: Path) -> None:
    listed, optout = tmp_path / "targets.txt", tmp_path / "optout.txt"
    listed.write_text("fd00::1, fd00::2  # two\nfd00::8/126\n")
    optout.write_text("fd00::2\nfd00::9/128\n")
    space = build_space([], (1,), list_files=[listed], exclude_files=[optout], scope=ULA)
    assert sorted(ip for ip, _ in space) == ["fd00::1", "fd00::8", "fd00::a", "fd00::b"]


def test_the_scope_guard_refuses_ipv6_outside_before_anything() -> None:
    with pytest.raises(ScopeError, match=r"^target fd01::1 is outside the allowed scope fd00::/64 "):
        build_space(["fd00::1", "fd01::1"], (1,), scope=ULA)
    with pytest.raises(ScopeError, match=r"target fd00::1 is outside the allowed scope 127\.0\.0\.0/8"):
        build_space(["fd00::1"], (1,), scope=Scope.parse("127.0.0.0/8"))


def test_the_scope_from_the_environment_takes_ipv6(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKSONAR_SCOPE", "fd00::/64,127.0.0.0/8")
    scope = Scope.from_env(None)
    assert scope is not None and scope.contains("fd00::5") and scope.contains("127.0.0.1")
    assert not scope.contains("fd01::5")


def test_the_ipv6_special_purpose_blocks_are_skipped_inside_a_larger_target() -> None:
    """A target named wholly inside a reserved block is scanned (a ULA lab); reserved space inside a
    larger target is skipped (the documentation prefix 2001:db8::/32, multicast)."""
    assert [ip for ip, _ in build_space(["fd00::1"], (1,), scope=ULA)] == ["fd00::1"]
    space = build_space(["2001:db7:ffff:ffff:ffff:ffff:ffff:fffe-2001:db8::1"], (1,))
    assert sorted(ip for ip, _ in space) == [
        "2001:db7:ffff:ffff:ffff:ffff:ffff:fffe",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
    ]
    assert (
        len(list(build_space(["ff02::1-ff02::2", "fe80::1"], (1,)))) == 3
    )  # each wholly inside a block: named
    assert (
        len(list(build_space(["fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff-fe80::1"], (1,)))) == 1
    )  # link-local skipped (from fe80:: on, reserved space runs to the end: site-local, multicast)


def test_a_mapped_address_is_never_a_way_around_the_scope() -> None:
    """An IPv4-mapped IPv6 target is refused; one another scanner wrote is checked as the IPv4 it is."""
    with pytest.raises(TargetError, match="IPv4-mapped IPv6 address"):
        build_space(["::ffff:10.0.0.1"], (1,), scope=Scope.parse("::/0"))
    guard = AddressFilter(Scope.parse("::/0"))
    assert not guard.in_scope("::ffff:10.0.0.1")
    assert AddressFilter(Scope.parse("10.0.0.0/8")).in_scope("::ffff:10.0.0.1")


def test_an_open_ports_filter_skips_reserved_ipv6_unless_the_scope_names_it() -> None:
    assert AddressFilter(None).skips("fd00::5") and AddressFilter(None).skips("ff02::1")
    assert not AddressFilter(ULA).skips("fd00::5") and AddressFilter(ULA).skips("fd01::5")
    assert not AddressFilter(None).skips("2a00:1450::1")


@pytest.mark.parametrize("ip", ["::a00:1", "2002:a00:1::1", "2002:7f00:1::1", "fec0::1", "64:ff9b::a00:1"])
def test_deprecated_blocks_that_lead_to_ipv4_or_a_site_are_reserved(ip: str) -> None:
    """IPv4-compatible (::10.0.0.1), 6to4 (2002:a00:1::, a tunnel to 10.0.0.1) and NAT64 (64:ff9b::a00:1)
    addresses lead to the IPv4 address inside them, which no IPv4 blocklist entry then guards (NAT64
    ones are reserved where the IPv4 address is); site-local ones are not global:
    another scanner's output naming one is skipped, as is one inside a larger target."""
    assert AddressFilter(None).skips(ip) and not AddressFilter(None).skips("2003::1")
    assert not AddressFilter(None).skips("64:ff9b::808:808")  # 8.8.8.8 through NAT64: global
    space = build_space(["2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff-2002::1"], (1,))
    assert list(space) == [("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1)]


def test_resolve_takes_an_ipv6_address_after_the_first_colon() -> None:
    name, address = parse_resolve("db.example.lab:fd00::1")
    space = build_space(["db.example.lab"], (1,), scope=ULA, resolve=[(name, address)])
    assert space.names == {"fd00::1": "db.example.lab"} and list(space) == [("fd00::1", 1)]
    with pytest.raises(TargetError, match="IPv4-mapped"):
        parse_resolve("db.example.lab:::ffff:10.0.0.1")


def test_ipv6_shards_rebuild_the_same_space() -> None:
    space = build_space(["fd00::/108", "fd00::10:0/108"], (1,), scope=ULA, seed=5)
    described = describe(space, ULA)
    assert described["targets"] == ["fd00::-fd00::f:ffff", "fd00::10:0-fd00::1f:ffff"]
    assert rebuild(described, 0, 1, ULA).intervals == space.intervals


@pytest.mark.parametrize(
    ("targets", "size"),
    [
        (["126.255.255.255", "127.0.0.0/30"], 5),
        (["fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fc00::/108"], 2**20 + 1),
    ],
)
def test_a_named_reserved_target_beside_another_is_sharded_and_rebuilt(targets: list[str], size: int) -> None:
    """A target named inside a reserved block stays an interval of its own: a worker rebuilding the
    shard judges it alone, as the submitter did, and finds the same space."""
    space = build_space(targets, (1,), seed=5)
    assert space.addresses == size
    assert rebuild(describe(space, None), 0, 1, None).intervals == space.intervals


def test_the_last_ipv4_address_and_the_first_ipv6_one_stay_apart() -> None:
    """Adjacent as keys, never one interval: each family's targets are written, sharded and rebuilt as
    targets of their own family."""
    space = build_space(["240.0.0.0/4", "::/127"], (1,), seed=5)
    assert space.describe() == "240.0.0.0-255.255.255.255, ::-::1"
    described = describe(space, None)
    assert described["targets"] == ["240.0.0.0-255.255.255.255", "::-::1"]
    assert rebuild(described, 0, 1, None).intervals == space.intervals


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("[fd00::1]:6379", ("fd00::1", 6379)),
        ("fd00::1", ("fd00::1", None)),
        ("127.0.0.1:9", ("127.0.0.1", 9)),
    ],
)
def test_an_address_given_to_show_and_events_may_be_ipv6(text: str, split: tuple[str, int | None]) -> None:
    assert split_address(text) == split


def test_an_ipv6_address_and_port_is_bracketed_for_people_and_urls() -> None:
    assert (
        address_port("fd00::1", 9200) == "[fd00::1]:9200"
        and address_port("127.0.0.1", 9200) == "127.0.0.1:9200"
    )
    assert Endpoint("fd00::1", 9200).url == "http://[fd00::1]:9200"


def _can_isolate() -> bool:
    if None in (shutil.which("unshare"), shutil.which("ip")):
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0


SERVERS = shutil.which("redis-server") and shutil.which("memcached")
needs_namespace = pytest.mark.skipif(
    not (_can_isolate() and SERVERS), reason="needs network namespaces, redis, memcached"
)

NAMESPACE = """\
set -e
ip link set lo up
ip -6 addr add fd00::1/128 dev lo nodad
ip -6 addr add fd00::2/128 dev lo nodad
redis-server --bind fd00::1 --port 6379 --protected-mode no --save '' --appendonly no >/dev/null 2>&1 &
redis=$!
memcached=
if [ -z "$NO_MEMCACHED" ]; then
  memcached -u root -l '[fd00::2]' -p 11211 -U 0 >/dev/null 2>&1 &
  memcached=$!
fi
trap 'kill $redis $memcached' EXIT
"$0" -c "$WAIT"
set +e
"$@"
"""
"""Run ARGS in a private network namespace with Redis on [fd00::1]:6379 and Memcached on [fd00::2]:11211
(none with NO_MEMCACHED set)."""

WAIT = """\
import os, socket, time
for address in (("fd00::1", 6379), ("fd00::2", 11211))[: 1 if os.environ.get("NO_MEMCACHED") else 2]:
    deadline = time.monotonic() + 20
    while socket.socket(socket.AF_INET6).connect_ex(address) and time.monotonic() < deadline:
        time.sleep(0.05)
"""


def in_namespace(
    *args: str, scope: str = "fd00::/64", memcached: bool = True
) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in the namespace, with LEAKSONAR_SCOPE `scope`."""
    env = {
        **os.environ,
        "LEAKSONAR_SCOPE": scope,
        "WAIT": WAIT,
        **({} if memcached else {"NO_MEMCACHED": "1"}),
    }
    command = ["unshare", "-rn", "sh", "-c", NAMESPACE, sys.executable, sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


ENGINE = """\
import json, sys, uvloop
from leaksonar.scan.engine import ScanOptions, examine_open_ports, run_scan
from leaksonar.targets import Scope, build_space, parse_ports
options, found = ScanOptions(workers=1), []
if sys.argv[1] == "--open-from":
    listed = [(ip, int(port), at) for at, (ip, port) in enumerate(p.rsplit(",", 1) for p in sys.argv[2:])]
    uvloop.run(examine_open_ports(iter(listed), options, "s", found.extend))
else:
    space = build_space(sys.argv[1:-1], parse_ports(sys.argv[-1]), scope=Scope.from_env(None))
    uvloop.run(run_scan(space, options, "s", found.extend))
for finding in found:
    print(json.dumps(finding.to_record()))
"""
"""The scan engine alone (no index): findings as JSON lines, of a discovery scan of TARGETS... PORTS or of
the open ports `--open-from IP,PORT...`."""


def engine_records(*args: str) -> dict[str, dict[str, Any]]:
    result = in_namespace("-c", ENGINE, *args)
    assert result.returncode == 0, result.stderr
    return {record["protocol"]: record for record in map(json.loads, result.stdout.splitlines())}


def records(path: Path) -> dict[str, dict[str, Any]]:
    _, found = jsonl_records(path)
    return {record["protocol"]: record for record in found}


def assert_found(found: dict[str, dict[str, Any]]) -> None:
    """Redis on [fd00::1]:6379 and Memcached on [fd00::2]:11211, identified, exposed, `ip` compressed."""
    assert set(found) == {"redis", "memcached"}
    assert (found["redis"]["ip"], found["redis"]["port"]) == ("fd00::1", 6379)
    assert (found["memcached"]["ip"], found["memcached"]["port"]) == ("fd00::2", 11211)
    assert all(record["exposed"] and record["auth"] == "none" for record in found.values())
    assert found["redis"]["software"]["name"] == "redis"


@needs_namespace
def test_the_engine_finds_and_inspects_ipv6_services() -> None:
    assert_found(engine_records("fd00:0::1", "fd00::/126", "6379,11211"))


@needs_namespace
def test_the_engine_inspects_ipv6_open_ports_found_elsewhere() -> None:
    assert_found(engine_records("--open-from", "fd00::1,6379", "fd00::2,11211"))


def scan_in_namespace(tmp_path: Path, *args: str, memcached: bool = True) -> dict[str, dict[str, Any]]:
    """`leaksonar scan ARGS` into tmp_path/i.db inside the namespace: its findings by protocol."""
    jsonl = tmp_path / "found.jsonl"
    db = ("--db", str(tmp_path / "i.db"), "--jsonl", str(jsonl), "-q")
    result = in_namespace("-m", "leaksonar", "scan", *args, *db, memcached=memcached)
    assert result.returncode == 0, result.stderr
    return records(jsonl)


@needs_namespace
def test_ipv6_end_to_end_scan_index_search_ui_and_a_closed_service(tmp_path: Path) -> None:
    targets = ("fd00:0::1", "fd00::2", "-p", "6379,11211")
    assert_found(scan_in_namespace(tmp_path, *targets))
    store = Store(str(tmp_path / "i.db"))
    hits = store.search('ip:"fd00::/64" exposed:true', limit=10).hits
    assert sorted((h.record["ip"], h.record["port"]) for h in hits) == [("fd00::1", 6379), ("fd00::2", 11211)]
    assert [h.record["port"] for h in store.search('ip:"FD00:0:0:0:0:0:0:2"', limit=10).hits] == [11211]
    web = TestClient(create_app(store, allowed_hosts=["testserver"], rate_limit=UNLIMITED))
    page = web.get("/host/fd00::1")
    assert page.status_code == 200 and "<h1>Host fd00::1</h1>" in page.text and "redis" in page.text
    found = web.get("/search", params={"q": 'ip:"fd00::/64"'}).text
    assert "[fd00::1]:6379" in found and "[fd00::2]:11211" in found
    assert web.get("/api/hosts/fd00::2").json()["services"][0]["protocol"] == "memcached"
    shown = leaksonar("show", "[fd00::2]:11211", "--db", str(tmp_path / "i.db")).stdout
    assert "[fd00::2]:11211" in shown and "memcached" in shown

    again = scan_in_namespace(tmp_path, *targets, memcached=False)  # Memcached is gone: the scan says so
    assert set(again) == {"redis"}
    events = web.get("/api/events", params={"ip": "fd00::2"}).json()["events"]
    assert [(e["port"], e["type"]) for e in events][-1] == (11211, "closed")


@needs_namespace
def test_ipv6_open_ports_from_another_scanner_are_scanned(tmp_path: Path) -> None:
    listed = tmp_path / "naabu.txt"
    listed.write_text("[fd00::1]:6379\n[fd00::2]:11211\n")
    assert_found(scan_in_namespace(tmp_path, "--open-from", str(listed)))


@needs_namespace
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("fd00::1", "-p", "6379"), "target fd00::1 is outside the allowed scope 127.0.0.0/8"),
        (
            ("fd00::/64", "-p", "6379"),
            "is an IPv6 prefix or range of more than 1,048,576 addresses (2^20): pass",
        ),
    ],
)
def test_ipv6_refusals_are_one_line_and_exit_2(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    result = in_namespace("-m", "leaksonar", "scan", *args, "--db", str(db), scope="127.0.0.0/8")
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not db.exists()
