"""rsync: identification from the daemon's greeting, read-only inspection of the lab's daemon (a second
one on an unusual port too), and scripted hostile daemons (listings and module lists without end, deep
trees, huge names, a slow drip, modules wanting a password, broken multiplexing)."""

from __future__ import annotations

import asyncio
import shutil
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hostile
import pytest
from hostile_rsync import FakeRsync, endless_files, entry, one_more_level, packets
from moved import moved_server
from replies import FTP_VSFTPD, RSYNC_31, RSYNC_32

from leaksonar.assess import assess, filenames
from leaksonar.lab import lab_digest, servers
from leaksonar.lab.kinds import kind
from leaksonar.lab.kinds.base import Launch
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols import filestore
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.rsync import MAX_MODULES, PROTOCOL
from leaksonar.scan.identify import identify

FAST = Limits(timeout=1.0, service_budget=5.0)
LabService = Callable[[str], dict[str, Any]]


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("greeting", [RSYNC_32, RSYNC_31, b"@RSYNCD: 29\n"])
def test_match_takes_the_daemon_greeting(greeting: bytes) -> None:
    identity = PROTOCOL.match(greeting)
    assert identity is not None
    assert (identity.protocol, identity.software, identity.auth) == ("rsync", Software("rsync"), "unknown")
    assert identity.banner == greeting.strip().decode()


@pytest.mark.parametrize("reply", [b"", FTP_VSFTPD, b"@RSYNCD: OK\n", b"@RSYNCD:32.0\n", b"@ERROR: x\n"])
def test_match_rejects_what_is_no_rsync_greeting(reply: bytes) -> None:
    assert PROTOCOL.match(reply) is None


# --- the lab --------------------------------------------------------------------------------------


def inspect_lab(entry: dict[str, Any], port: int | None = None) -> Inspection:
    endpoint = Endpoint(entry["ip"], port or entry["port"])
    return asyncio.run(PROTOCOL.inspect(endpoint, Identity("rsync"), Limits()))


def test_the_open_module_is_listed_read_and_assessed(lab_service: LabService) -> None:
    entry = lab_service("rsync-open")
    before = lab_digest(entry)
    found = inspect_lab(entry)
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("rsync", "none", True, ())
    assert found.details["modules"] == {"readable": ["backups"], "auth_required": ["private"], "refused": []}
    expected = {c["name"]: c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {c.name: c.rows for c in found.collections} == expected
    assert (found.databases, found.rows, found.rows_estimated) == (2, sum(expected.values()), False)
    assert found.size_bytes and found.size_bytes == sum(c.size_bytes or 0 for c in found.collections)
    read = {d["key"] for s in found.samples for d in s.documents if "value" in d}
    assert read == {
        "backups/.env",
        "backups/backup/shop.sql",
        "backups/exports/customers_2025.csv",
        "backups/pub/welcome.txt",
        "backups/pub/docs/2024/manual/notes.md",
    }

    assessment = assess(found)
    assert assessment.severity in ("high", "critical")
    named = filenames.named_files(found)
    assert named["database_dump"] == ("backups/backup/shop.sql",) and named["secret"] == ("backups/.env",)
    assert {"name", "phone", "email", "national_id"} <= set(assessment.collection_pii[("", "backups")])


def test_the_lab_greeting_is_identified(lab_service: LabService) -> None:
    entry = lab_service("rsync-open")
    identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
    assert identity.protocol == "rsync" and identity.banner.startswith("@RSYNCD: ")


@pytest.fixture(scope="module")
def moved(lab: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    """A second daemon of the lab's kind on rsync-open's address, port 8873."""
    with moved_server(lab, "rsync-open", 8873) as service:
        yield service, 8873


def test_a_daemon_on_an_unusual_port_is_identified_and_inspected(moved: tuple[dict[str, Any], int]) -> None:
    service, port = moved
    assert port not in PROTOCOL.default_ports
    assert asyncio.run(identify(service["ip"], port, None, FAST)).protocol == "rsync"
    assert inspect_lab(service, port).rows == inspect_lab(service).rows


# --- scripted and hostile daemons -----------------------------------------------------------------

TREE = {
    "exports/customers.csv": b"name,phone\nLi Lei,13800000000\n",
    "backup/2024/shop.sql": b"INSERT INTO t VALUES (1);\n" * 10,
    "README_RESTORE.txt": b"Files encrypted. Send 0.1 BTC to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT\n",
    "odd/a*b [1].txt": b"wildcards in a name\n",
    "media/big.mp4": bytes(200_000),
}


def run(server: FakeRsync, limits: Limits = FAST) -> tuple[Inspection, float]:
    return hostile.run(PROTOCOL, server.handle, Identity("rsync"), limits)


def documents(found: Inspection) -> list[dict[str, Any]]:
    return [d for s in found.samples for d in s.documents]


def test_readable_modules_are_walked_as_the_sender_only() -> None:
    server = FakeRsync({"data": dict(TREE), "vault": None})
    found, _ = run(server)
    assert all(a[:2] == ["--server", "--sender"] and set(a[2:-2]) <= {"-d"} for a in server.arguments if a)
    assert (found.auth, found.databases, found.rows, found.errors) == ("none", 2, 5, ())
    assert found.size_bytes == sum(map(len, TREE.values()))
    assert found.details["modules"] == {"readable": ["data"], "auth_required": ["vault"], "refused": []}
    assert [(c.name, c.rows) for c in found.collections] == [("data", 5)]
    heads_read = {d["key"]: d["value"] for d in documents(found) if "value" in d}
    assert heads_read == {f"data/{k}": v for k, v in TREE.items() if not k.endswith(".mp4")}
    assert assess(found).infected


def test_every_module_wanting_a_password_is_auth_required() -> None:
    server = FakeRsync({"a": None, "b": None})
    found, _ = run(server)
    assert (found.auth, found.exposed, found.databases, found.collections, found.errors) == (
        "required",
        False,
        2,
        (),
        (),
    )
    assert server.opened == ["", "a", "b"] and server.arguments == []


def test_a_refused_module_is_said_and_the_others_walked() -> None:
    server = FakeRsync({"data": {"a.txt": b"a\n"}}, module_lines=iter([b"gone\t\n", b"data\t\n"]))
    found, _ = run(server)
    assert (found.auth, found.rows, found.details["modules"]["refused"]) == ("none", 1, ["gone"])
    assert hostile.kinds(found) == [ErrorKind.COMMAND_REFUSED]


def test_odd_module_names_are_passed_over() -> None:
    lines = iter([b"bad\x1bname\t\n", b"n" * 300 + b"\t\n", b"a/b\t\n", b"data\t\n"])
    server = FakeRsync({"data": {"a.txt": b"a\n"}}, module_lines=lines)
    found, _ = run(server)
    assert server.opened == ["", "data", "data", "data"]
    assert (found.databases, found.rows, found.rows_estimated) == (4, 1, True)
    assert found.details["modules"] == {"readable": ["data"], "auth_required": [], "refused": []}
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_an_endless_module_list_stops_at_its_cap() -> None:
    lines = (b"m%d\tcomment\n" % i for i in range(10**9))
    found, elapsed = run(FakeRsync(module_lines=lines))
    assert elapsed < 3.0 and MAX_MODULES < 10**9
    assert (found.auth, found.collections, hostile.kinds(found)) == ("unknown", (), [ErrorKind.OVER_LIMIT])


def test_a_head_stops_at_its_cap_whatever_size_was_announced() -> None:
    server = FakeRsync({"m": {"dump.sql": b"x" * 3_000_000}}, sizes={"dump.sql": 10})
    found, elapsed = run(server, Limits(timeout=1.0, service_budget=5.0, max_bytes=8_000_000))
    (document,) = [d for d in documents(found) if "value" in d]
    assert len(document["value"]) == filestore.MAX_HEAD
    assert elapsed < 2.0 and found.errors == ()


def test_sizes_past_32_bits_are_read_whole() -> None:
    found, _ = run(FakeRsync({"m": {"disk.img": b"x"}}, sizes={"disk.img": 5 * 2**30}))
    assert (found.rows, found.size_bytes, found.errors) == (1, 5 * 2**30, ())


def test_an_endless_listing_stops_at_the_file_cap() -> None:
    found, elapsed = run(
        FakeRsync({"m": {}}, listing=endless_files), Limits(timeout=1.0, service_budget=10.0)
    )
    assert elapsed < 5.0
    assert (found.auth, found.rows, found.rows_estimated) == ("none", filestore.MAX_FILES - 1, True)
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_an_endless_listing_over_the_byte_cap_keeps_what_was_listed() -> None:
    limits = Limits(timeout=1.0, service_budget=5.0, max_bytes=20_000)
    found, _ = run(FakeRsync({"m": {}}, listing=endless_files), limits)
    assert found.rows is not None and 0 < found.rows < filestore.MAX_FILES and found.rows_estimated
    assert ErrorKind.OVER_LIMIT in hostile.kinds(found)


def test_a_tree_without_bottom_stops_at_the_depth_cap() -> None:
    found, elapsed = run(FakeRsync({"m": {}}, listing=one_more_level))
    assert elapsed < 4.0
    assert (found.rows, found.rows_estimated) == (filestore.MAX_DEPTH, True)
    assert max(len(d["key"].split("/")) for d in documents(found)) == filestore.MAX_DEPTH + 1
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_huge_names_are_passed_over_and_an_oversized_name_ends_the_walk() -> None:
    def listing(_: str) -> Iterator[bytes]:
        yield entry(b"a.bin", 1) + entry(b"n" * 2000, 1)
        yield bytes([0x40]) + struct.pack("<i", 100_000) + b"m" * 100_000

    found, elapsed = run(FakeRsync({"m": {}}, listing=listing))
    assert elapsed < 2.0
    assert ([d["key"] for d in documents(found)], found.rows_estimated) == (["m", "m/a.bin"], True)
    assert set(hostile.kinds(found)) == {ErrorKind.OVER_LIMIT, ErrorKind.PROTOCOL_ERROR}
    assert all(len(error.message) < 300 for error in found.errors)


def test_a_packet_that_is_no_multiplexed_packet_is_a_protocol_error() -> None:
    server = FakeRsync({"m": {}}, listing=lambda d: iter([b"\x00"]))
    server.send = _garbage(server.send)  # type: ignore[method-assign]
    found, _ = run(server)
    assert ErrorKind.PROTOCOL_ERROR in hostile.kinds(found) and found.rows == 0


def _garbage(send: Callable[..., Any]) -> Callable[..., Any]:
    async def sends_garbage(writer: asyncio.StreamWriter, data: bytes) -> None:
        await send(writer, b"\xff\xff\xff\x01" + data)

    return sends_garbage


def test_an_error_message_ending_the_stream_is_the_refusal() -> None:
    server = FakeRsync({"m": {}}, listing=lambda d: iter([]))
    server.send = _error(server.send)  # type: ignore[method-assign]
    found, _ = run(server)
    assert any("Permission denied" in e.message for e in found.errors)
    assert hostile.kinds(found) == [ErrorKind.COMMAND_REFUSED]


def _error(send: Callable[..., Any]) -> Callable[..., Any]:
    async def error_then_hang_up(writer: asyncio.StreamWriter, data: bytes) -> None:
        await send(writer, packets(b'opendir "/" failed: Permission denied (13)\n', tag=3))
        writer.close()

    return error_then_hang_up


def test_a_slow_drip_ends_in_time_with_what_was_listed() -> None:
    found, elapsed = run(FakeRsync({"m": dict(TREE)}, drip=0.4), Limits(timeout=0.5, service_budget=3.0))
    assert elapsed < 3.5
    assert found.auth == "none" and ErrorKind.TIMEOUT in hostile.kinds(found)
    assert found.rows_estimated


def test_a_daemon_that_greets_and_hangs_up_is_refused() -> None:
    async def greets_and_hangs_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(RSYNC_32)
        await writer.drain()
        writer.close()

    found, elapsed = hostile.run(PROTOCOL, greets_and_hangs_up, Identity("rsync"), FAST)
    assert elapsed < 1.0
    assert (found.auth, found.collections, hostile.kinds(found)) == ("unknown", (), [ErrorKind.REFUSED])


def test_module_names_that_read_as_options_are_never_sent() -> None:
    lines = iter([b"--remove-source-files\t\n", b"-e\t\n", b"data\t\n"])
    modules = {"--remove-source-files": {"a.sql": b"x\n"}, "-e": {"b.sql": b"x\n"}, "data": {"c.txt": b"c\n"}}
    server = FakeRsync(modules, module_lines=lines)
    found, _ = run(server)
    assert not [a for a in server.arguments if a for value in a[a.index(".") + 1 :] if value.startswith("-")]
    assert server.opened == ["", "data", "data", "data"]
    assert found.details["modules"]["readable"] == ["data"] and found.rows_estimated


@pytest.fixture(scope="module")
def odd_tree(lab: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    """A daemon of the lab's kind on rsync-open's address, port 8874, its open module holding a directory
    named with a backslash and, in it, a file named with a wildcard."""
    service = next(s for s in lab["services"] if s["name"] == "rsync-open")
    workdir = Path(lab["dir"]) / "odd-tree-rsync"
    workdir.mkdir(mode=0o755)
    launch = Launch("rsync-odd-tree", service["ip"], 8874, workdir, None, workdir / "server.log")
    started = kind("rsync").start(launch)
    odd = workdir / "backups" / "a\\b"
    odd.mkdir(mode=0o755)
    (odd / "c*d.txt").write_bytes(b"behind a backslash\n")
    (odd / "c*d.txt").chmod(0o644)
    pid = servers.spawn(started.argv, launch.log, started.account, started.env)
    try:
        servers.wait_listening(pid, launch.ip, launch.port, launch.log)
        yield service, launch.port
    finally:
        servers.stop(pid, "rsync", launch.ip)
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_wildcard_name_below_a_backslash_name_is_read(odd_tree: tuple[dict[str, Any], int]) -> None:
    found = inspect_lab(*odd_tree)
    assert found.errors == ()
    assert {d["key"]: d.get("value") for d in documents(found)}[
        "backups/a\\b/c*d.txt"
    ] == b"behind a backslash\n"


def test_a_negative_size_is_unknown() -> None:
    server = FakeRsync({"data": {"a.sql": b"x\n", "b.sql": b"y\n"}}, sizes={"a.sql": -5})
    found, _ = run(server)
    sizes = {d["key"]: d["size"] for d in documents(found) if "size" in d}
    assert sizes == {"data/a.sql": None, "data/b.sql": 2} and found.size_bytes == 2
