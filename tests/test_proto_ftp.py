"""FTP: identification from greetings, read-only inspection of the lab's vsftpd (a second one on an unusual
port too), and scripted hostile servers (a PASV reply naming another address, endless and deep listings,
huge names, a slow drip, refusals)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import hostile
import pytest
from hostile_ftp import FakeFtp, endless_files, one_more_level
from moved import moved_server
from replies import FTP_FILEZILLA, FTP_MICROSOFT, FTP_PROFTPD, FTP_PUREFTPD, FTP_VSFTPD, SMTP_GREETING

from leaksonar.assess import assess, filenames, heads
from leaksonar.lab import lab_digest
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols import filestore
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.ftp import PASSWORD, PROTOCOL, parse_line
from leaksonar.protocols.useragent import INFO_URL
from leaksonar.scan.identify import identify

FAST = Limits(timeout=1.0, service_budget=5.0)
READ_COMMANDS = {b"USER", b"PASS", b"FEAT", b"TYPE", b"PASV", b"EPSV", b"LIST", b"MLSD", b"RETR"}
LabService = Callable[[str], dict[str, Any]]


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("greeting", "software"),
    [
        (FTP_VSFTPD, Software("vsftpd", "3.0.3")),
        (FTP_PROFTPD, Software("proftpd", "1.3.8")),
        (FTP_PUREFTPD, Software("pure-ftpd")),
        (FTP_FILEZILLA, Software("filezilla-server", "1.7.0")),
        (FTP_MICROSOFT, Software("microsoft-ftp")),
        (b"220 Welcome to the archive\r\n", None),
    ],
)
def test_match_names_the_server_from_its_greeting(greeting: bytes, software: Software | None) -> None:
    identity = PROTOCOL.match(greeting)
    assert identity is not None
    assert (identity.protocol, identity.software, identity.auth) == ("ftp", software, "unknown")


@pytest.mark.parametrize("reply", [SMTP_GREETING, b"", b"230 ok\r\n", b"2200\r\n"])
def test_match_rejects_what_is_no_ftp_greeting(reply: bytes) -> None:
    assert PROTOCOL.match(reply) is None


@pytest.mark.parametrize(
    ("line", "mlsd", "entry"),
    [
        (
            "type=file;size=48213;modify=20250101000000; customers 2025.csv",
            True,
            ("customers 2025.csv", 48213, False),
        ),
        ("Type=dir;Modify=20250101000000; backup", True, ("backup", None, True)),
        ("type=cdir; /", True, None),
        ("-rw-r--r--    1 0        0           114 Dec 08 03:56 .env", False, (".env", 114, False)),
        ("drwxr-xr-x 2 ftp ftp 4096 Jan  1  2024 old backups", False, ("old backups", 4096, True)),
        ("-rw-r--r-- 1 owner 77 Mar 10 10:00 solo.txt", False, ("solo.txt", 77, False)),
        ("lrwxrwxrwx 1 0 0 7 Jan 01 00:00 latest -> v2", False, ("latest", None, False)),
        ("01-31-24  10:00AM       <DIR>          Reports", False, ("Reports", None, True)),
        ("01-31-24  10:00PM              123456 sales.xlsx", False, ("sales.xlsx", 123456, False)),
        ("total 12", False, None),
        ("crw-rw-rw- 1 0 0 1, 3 Jan 01 00:00 null", False, None),
    ],
)
def test_listing_lines_are_read_in_every_format(
    line: str, mlsd: bool, entry: tuple[str, int | None, bool] | None
) -> None:
    found = parse_line(line, mlsd)
    assert (found and (found.path, found.size, found.directory)) == entry


def test_the_kit_reads_as_many_names_and_head_bytes_as_the_assessment() -> None:
    assert (filestore.MAX_FILES, filestore.MAX_HEAD) == (filenames.MAX_FILES, heads.MAX_HEAD)


def test_the_anonymous_password_names_leaksonar() -> None:
    assert INFO_URL in PASSWORD and "\r" not in PASSWORD and "\n" not in PASSWORD


# --- the lab --------------------------------------------------------------------------------------


def inspect_lab(entry: dict[str, Any], port: int | None = None) -> Inspection:
    endpoint = Endpoint(entry["ip"], port or entry["port"])
    return asyncio.run(PROTOCOL.inspect(endpoint, Identity("ftp"), Limits()))


def test_anonymous_vsftpd_is_listed_read_and_assessed(lab_service: LabService) -> None:
    entry = lab_service("ftp-anon")
    before = lab_digest(entry)
    found = inspect_lab(entry)
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("ftp", "none", True, ())
    expected = {c["name"]: c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {c.name: c.rows for c in found.collections} == expected
    assert (found.databases, found.rows, found.rows_estimated) == (1, sum(expected.values()), False)
    assert found.size_bytes and found.size_bytes == sum(c.size_bytes or 0 for c in found.collections)
    read = {d["key"] for s in found.samples for d in s.documents if "value" in d}
    assert read == {
        ".env",
        "backup/shop.sql",
        "exports/customers_2025.csv",
        "pub/welcome.txt",
        "pub/docs/2024/manual/notes.md",
    }
    directories = {d["key"] for s in found.samples for d in s.documents if d.get("directory")}
    assert directories == {
        "backup",
        "exports",
        "pub",
        "pub/docs",
        "pub/docs/2024",
        "pub/docs/2024/manual",
        "pub/images",
    }

    assessment = assess(found)
    assert assessment.severity in ("high", "critical")
    named = filenames.named_files(found)
    assert named["database_dump"] == ("backup/shop.sql",) and named["secret"] == (".env",)
    assert {"name", "phone", "email", "national_id"} <= set(assessment.collection_pii[("", "exports")])


def test_the_lab_greeting_is_identified(lab_service: LabService) -> None:
    entry = lab_service("ftp-anon")
    identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
    assert (identity.protocol, identity.software) == ("ftp", Software("vsftpd", entry["software"]["version"]))


@pytest.fixture(scope="module")
def moved(lab: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    """A second vsftpd of the lab's kind on ftp-anon's address, port 2121."""
    with moved_server(lab, "ftp-anon", 2121) as service:
        yield service, 2121


def test_vsftpd_on_an_unusual_port_is_identified_and_inspected(moved: tuple[dict[str, Any], int]) -> None:
    service, port = moved
    assert port not in PROTOCOL.default_ports
    identity = asyncio.run(identify(service["ip"], port, None, FAST))
    assert (identity.protocol, identity.software) == (
        "ftp",
        Software("vsftpd", service["software"]["version"]),
    )
    assert inspect_lab(service, port).rows == inspect_lab(service).rows


# --- scripted and hostile servers -----------------------------------------------------------------

TREE = {
    "exports/customers.csv": b"name,phone\nLi Lei,13800000000\n",
    "backup/2024/shop.sql": b"INSERT INTO t VALUES (1);\n" * 10,
    "README_RESTORE.txt": b"Files encrypted. Send 0.1 BTC to 1BoatSLRHtKNngkdXEeobR76b53LETtpyT\n",
    "media/big.mp4": bytes(200_000),
}


def run(server: FakeFtp, limits: Limits = FAST) -> tuple[Inspection, float]:
    return hostile.run(PROTOCOL, server.handle, Identity("ftp"), limits)


def test_a_tree_is_walked_with_read_commands_only() -> None:
    server = FakeFtp(dict(TREE))
    found, _ = run(server)
    assert set(server.commands) <= READ_COMMANDS and b"MLSD" in server.commands
    assert (found.auth, found.rows, found.size_bytes, found.errors) == (
        "none",
        4,
        sum(map(len, TREE.values())),
        (),
    )
    assert {c.name: c.rows for c in found.collections} == {"/": 1, "backup": 1, "exports": 1, "media": 1}
    heads_read = {d["key"]: d["value"] for s in found.samples for d in s.documents if "value" in d}
    assert heads_read == {k: v for k, v in TREE.items() if not k.endswith(".mp4")}
    assert assess(found).infected


def test_the_list_fallback_reads_ls_lines() -> None:
    server = FakeFtp(dict(TREE), mlsd=False)
    found, _ = run(server)
    assert b"MLSD" not in server.commands
    assert (found.rows, found.errors) == (4, ())


def test_a_pasv_reply_naming_another_address_is_not_followed() -> None:
    server = FakeFtp(dict(TREE), pasv_address="127.0.0.2")
    found, _ = run(server)
    assert (found.rows, found.errors) == (4, ())
    assert server.data_addresses and set(server.data_addresses) == {"127.0.0.1"}


def test_a_head_stops_at_its_cap_whatever_size_was_announced() -> None:
    server = FakeFtp({"dump.sql": b"x" * 3_000_000}, sizes={"dump.sql": 10})
    found, elapsed = run(server)
    (document,) = found.samples[0].documents
    assert len(document["value"]) == filestore.MAX_HEAD
    assert elapsed < 2.0 and found.errors == ()


def test_an_endless_listing_stops_at_the_file_cap() -> None:
    found, elapsed = run(FakeFtp(listing=endless_files), Limits(timeout=1.0, service_budget=10.0))
    assert elapsed < 5.0
    assert (found.auth, found.rows, found.rows_estimated) == ("none", filestore.MAX_FILES, True)
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_an_endless_listing_over_the_byte_cap_keeps_what_was_listed() -> None:
    found, _ = run(FakeFtp(listing=endless_files), Limits(timeout=1.0, service_budget=5.0, max_bytes=20_000))
    assert found.rows is not None and 0 < found.rows < filestore.MAX_FILES and found.rows_estimated
    assert ErrorKind.OVER_LIMIT in hostile.kinds(found)


def test_a_tree_without_bottom_stops_at_the_depth_cap() -> None:
    found, elapsed = run(FakeFtp(listing=one_more_level))
    assert elapsed < 3.0
    assert (found.rows, found.rows_estimated) == (filestore.MAX_DEPTH + 1, True)
    deepest = max((d["key"] for s in found.samples for d in s.documents), key=len)
    assert deepest.count("/") == filestore.MAX_DEPTH
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_huge_names_are_passed_over_and_a_huge_line_ends_the_listing() -> None:
    def listing(_: str) -> bytes:
        long_name = b"type=file;size=1; " + b"n" * 2000 + b"\r\n"
        return b"type=file;size=1; a.bin\r\n" + long_name + b"type=file;size=1; " + b"m" * 100_000 + b"\r\n"

    found, elapsed = run(FakeFtp(listing=listing))
    assert elapsed < 2.0
    assert ([d["key"] for s in found.samples for d in s.documents], found.rows_estimated) == (["a.bin"], True)
    assert set(hostile.kinds(found)) == {ErrorKind.OVER_LIMIT}
    assert all(len(error.message) < 300 for error in found.errors)


def test_a_slow_drip_of_data_ends_in_time_with_what_was_listed() -> None:
    server = FakeFtp(dict(TREE), drip=0.4)
    found, elapsed = run(server, Limits(timeout=0.5, service_budget=3.0))
    assert elapsed < 3.5
    assert found.auth == "none" and ErrorKind.TIMEOUT in hostile.kinds(found)
    assert found.rows_estimated


def test_an_anonymous_login_refused_is_auth_required() -> None:
    server = FakeFtp(dict(TREE), anonymous=False)
    found, _ = run(server)
    assert (found.auth, found.exposed, found.collections, found.samples, found.errors) == (
        "required",
        False,
        (),
        (),
        (),
    )
    assert server.commands == [b"USER", b"PASS"]


def test_a_server_that_greets_and_hangs_up_is_refused() -> None:
    async def greets_and_hangs_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(FTP_VSFTPD)
        await writer.drain()
        writer.close()

    found, elapsed = hostile.run(PROTOCOL, greets_and_hangs_up, Identity("ftp"), FAST)
    assert elapsed < 1.0
    assert (found.auth, found.collections, hostile.kinds(found)) == ("unknown", (), [ErrorKind.REFUSED])


def test_a_path_listed_twice_is_listed_and_counted_once() -> None:
    def listing(directory: str) -> bytes:
        twice = b"type=dir; d\r\ntype=file;size=3; f.sql\r\n" * 2
        return twice if directory.count("d") < 3 else b""

    server = FakeFtp(listing=listing)
    found, _ = run(server)
    keys = [d["key"] for s in found.samples for d in s.documents]
    assert sorted(keys) == sorted(set(keys)) and found.rows == 3
    assert server.commands.count(b"MLSD") == 4 and server.commands.count(b"RETR") == 3


def test_an_endless_listing_of_odd_names_stops_at_the_file_cap() -> None:
    def odd_names(_: str) -> Iterator[bytes]:
        while True:
            yield b"type=file;size=1; odd\x01name\r\n" * 1000

    limits = Limits(timeout=1.0, service_budget=15.0, max_bytes=1 << 40)
    found, elapsed = run(FakeFtp(listing=odd_names), limits)
    assert elapsed < 5.0
    assert (found.rows, found.rows_estimated) == (0, True)
    assert ErrorKind.TIMEOUT not in hostile.kinds(found)
