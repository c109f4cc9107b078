"""SMB: identification from the NEGOTIATE answer, read-only guest inspection of the lab's real Samba
(and of more smbd instances of the lab's kind: an unusual port, guests refused, a huge and a deep tree),
and hostile servers (silence, a huge announced message, a slow drip, garbage)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import hostile
import pytest
from smbprotocol.file_info import FileDirectoryInformation, FileInformationClass
from smbprotocol.open import SMB2QueryDirectoryRequest

from leaksonar.assess import assess, filenames
from leaksonar.lab import lab_digest, servers
from leaksonar.lab.kinds import kind
from leaksonar.lab.kinds.base import Launch
from leaksonar.model import ErrorKind, Identity, Inspection, Limits, Software
from leaksonar.protocols import filestore, smb
from leaksonar.protocols.base import Endpoint
from leaksonar.protocols.kit import Learned
from leaksonar.protocols.smb import PROBE, PROTOCOL, samba_name
from leaksonar.scan.identify import identify

FAST = Limits(timeout=1.0, service_budget=5.0)
LIMITS = Limits()
LabService = Callable[[str], dict[str, Any]]


def negotiate_answer(dialect: int, security_mode: int) -> bytes:
    """The start of an SMB2 NEGOTIATE answer: the header and the body's first fields."""
    header = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ16s", 64, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, b"")
    message = header + struct.pack("<HHHH", 65, security_mode, dialect, 0) + bytes(56)
    return struct.pack(">I", len(message)) + message


# --- match ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "banner"),
    [
        (negotiate_answer(0x0302, 0x01), "SMB 3.0.2"),
        (negotiate_answer(0x0210, 0x03), "SMB 2.1.0, signing required"),
        (negotiate_answer(0x02FF, 0x01), "SMB 2.?"),
        (b"\x00\x00\x00\x23\xffSMBr" + bytes(30), "SMB1"),
    ],
)
def test_match_reads_the_dialect_and_signing(reply: bytes, banner: str) -> None:
    identity = PROTOCOL.match(reply)
    assert identity is not None and (identity.protocol, identity.banner) == ("smb", banner)


@pytest.mark.parametrize(
    "reply",
    [
        b"",
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"\x00\x00\x00\x10\xfeSMB",
        b"\x01\x00\x00\x10\xfeSMB@\x00" + bytes(80),
    ],
)
def test_match_rejects_what_is_no_smb_answer(reply: bytes) -> None:
    assert PROTOCOL.match(reply) is None


def test_samba_is_named_from_its_server_guid() -> None:
    assert (samba_name(b"vm".ljust(16, b"\0")), samba_name(bytes(range(16))), samba_name(bytes(16))) == (
        "vm",
        None,
        None,
    )


def test_the_probe_is_one_framed_negotiate() -> None:
    assert struct.unpack(">I", PROBE[:4])[0] == len(PROBE) - 4 and PROBE[4:8] == b"\xfeSMB"
    assert PROBE[16:18] == b"\x00\x00"  # command 0: NEGOTIATE


# --- the lab --------------------------------------------------------------------------------------


def inspect_at(ip: str, port: int, limits: Limits = LIMITS) -> Inspection:
    return asyncio.run(PROTOCOL.inspect(Endpoint(ip, port), Identity("smb"), limits))


def test_the_guest_share_of_samba_is_listed_read_and_assessed(lab_service: LabService) -> None:
    entry = lab_service("smb-guest")
    before = lab_digest(entry)
    found = inspect_at(entry["ip"], entry["port"])
    assert lab_digest(entry) == before

    assert (found.protocol, found.auth, found.exposed, found.errors) == ("smb", "none", True, ())
    expected = {c["name"]: c["rows"] for db in entry["databases"] for c in db["collections"]}
    assert {c.name: c.rows for c in found.collections} == expected
    assert (found.databases, found.rows, found.rows_estimated) == (2, sum(expected.values()), False)
    assert found.details["shares_refused"] == ["private"]
    assert found.details["dialect"].startswith("3.") and found.details["signing_required"] is False
    assert found.software == Software("samba") and found.details["server_name"]
    read = {d["key"] for s in found.samples for d in s.documents if "value" in d}
    assert read == {
        "public/.env",
        "public/backup/shop.sql",
        "public/exports/customers_2025.csv",
        "public/pub/welcome.txt",
        "public/pub/docs/2024/manual/notes.md",
    }
    assessment = assess(found)
    assert assessment.severity in ("high", "critical")
    named = filenames.named_files(found)
    assert named["database_dump"] == ("public/backup/shop.sql",) and named["secret"] == ("public/.env",)
    assert {"name", "phone", "email", "national_id"} <= set(assessment.collection_pii[("", "public")])


def test_the_lab_server_is_identified(lab_service: LabService) -> None:
    entry = lab_service("smb-guest")
    identity = asyncio.run(identify(entry["ip"], entry["port"], None, FAST))
    assert (identity.protocol, identity.software) == ("smb", Software("samba"))
    assert identity.banner.startswith("SMB 3.")


@contextmanager
def smbd(lab: dict[str, Any], port: int, guests: bool = True, extra: Callable[[Path], None] | None = None):
    """Another smbd of the lab's kind on smb-guest's address: guests mapped or not, more files in the
    public share."""
    service = next(s for s in lab["services"] if s["name"] == "smb-guest")
    workdir = Path(lab["dir"]) / f"smbd-{port}"
    workdir.mkdir(mode=0o755)
    launch = Launch(f"smb-{port}", service["ip"], port, workdir, None, workdir / "server.log")
    started = kind("smb").start(launch)
    if not guests:
        config = workdir / "smb.conf"
        config.write_text(config.read_text().replace("map to guest = Bad User", "map to guest = Never"))
    if extra is not None:
        extra(workdir / "files")
    pid = servers.spawn(started.argv, launch.log, started.account, started.env)
    try:
        servers.wait_listening(pid, launch.ip, launch.port, launch.log)
        yield service
    finally:
        servers.stop(pid, "smb", launch.ip)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def moved(lab: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with smbd(lab, 4455) as service:
        yield service


def test_samba_on_an_unusual_port_is_identified_and_inspected(moved: dict[str, Any]) -> None:
    assert 4455 not in PROTOCOL.default_ports
    identity = asyncio.run(identify(moved["ip"], 4455, None, FAST))
    assert identity.protocol == "smb"
    assert inspect_at(moved["ip"], 4455).rows == inspect_at(moved["ip"], moved["port"]).rows


def test_samba_refusing_guests_is_auth_required(lab: dict[str, Any]) -> None:
    with smbd(lab, 4456, guests=False) as service:
        found = inspect_at(service["ip"], 4456)
    assert (found.auth, found.exposed, found.collections, found.samples) == ("required", False, (), ())


def test_a_huge_directory_stops_at_the_file_cap(lab: dict[str, Any]) -> None:
    def many(files: Path) -> None:
        (files / "many").mkdir(mode=0o755)
        for i in range(filestore.MAX_FILES + 100):
            (files / "many" / f"{'n' * 200}{i}.bin").touch(mode=0o644)

    with smbd(lab, 4457, extra=many) as service:
        found = inspect_at(service["ip"], 4457, Limits(service_budget=20.0))
    assert (found.auth, found.rows_estimated) == ("none", True)
    assert found.rows is not None and filestore.MAX_FILES - 20 <= found.rows <= filestore.MAX_FILES
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


def test_a_deep_tree_stops_at_the_depth_cap(lab: dict[str, Any]) -> None:
    def deep(files: Path) -> None:
        (files / "/".join(["d"] * (filestore.MAX_DEPTH + 5))).mkdir(mode=0o755, parents=True)

    with smbd(lab, 4458, extra=deep) as service:
        found = inspect_at(service["ip"], 4458)
    deepest = max((d["key"] for s in found.samples for d in s.documents), key=len)
    assert deepest.count("/") == filestore.MAX_DEPTH and found.rows_estimated
    assert hostile.kinds(found) == [ErrorKind.OVER_LIMIT]


# --- hostile servers ------------------------------------------------------------------------------


def receivers() -> int:
    """smbprotocol's receiving threads still running (one per connection; callers wait on them)."""
    return sum(t.name.startswith("msg_worker") for t in threading.enumerate())


def run(handler: hostile.Handler, limits: Limits = FAST) -> tuple[Inspection, float]:
    found, elapsed = hostile.run(PROTOCOL, handler, Identity("smb"), limits)
    for _ in range(30):  # the socket was shut down: its receiver ends, and any call waiting on it returns
        if not receivers():
            break
        time.sleep(0.1)
    assert receivers() == 0
    return found, elapsed


def test_a_silent_server_times_out_and_frees_its_threads() -> None:
    found, elapsed = run(hostile.silent)
    assert elapsed < 3.0
    assert (found.auth, found.collections, hostile.kinds(found)) == ("unknown", (), [ErrorKind.TIMEOUT])


def test_a_huge_announced_message_is_never_allocated() -> None:
    found, elapsed = run(hostile.sends(b"\xff\xff\xff\xf0" + b"\xfeSMB" * 100))
    assert elapsed < 3.0
    assert (found.auth, hostile.kinds(found)) == ("unknown", [ErrorKind.OVER_LIMIT])


def test_a_slow_drip_ends_at_the_deadline() -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        for byte in negotiate_answer(0x0302, 1):
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.3)

    found, elapsed = run(drip, Limits(timeout=1.0, service_budget=2.0))
    assert elapsed < 4.0
    assert found.auth == "unknown" and ErrorKind.TIMEOUT in hostile.kinds(found)


def test_garbage_after_the_frame_is_a_protocol_error() -> None:
    found, elapsed = run(hostile.sends(b"\x00\x00\x00\x40" + b"\xfeSMB" + bytes(60)))
    assert elapsed < 3.0
    assert (found.auth, found.collections, hostile.kinds(found)) == (
        "unknown",
        (),
        [ErrorKind.PROTOCOL_ERROR],
    )


def test_a_listing_answer_of_overlapping_entries_is_refused_at_once() -> None:
    """smbprotocol copies the rest of a listing answer for each entry: entries 8 bytes apart in one
    answer would hold a worker thread for minutes (the answer's parse is called as smbprotocol calls it)."""
    answer = bytearray(1 << 16)
    for offset in range(0, len(answer) - 64, 8):
        struct.pack_into("<I", answer, offset, 8)
    started = time.monotonic()
    with pytest.raises(ValueError):
        SMB2QueryDirectoryRequest.unpack_response(
            FileInformationClass.FILE_DIRECTORY_INFORMATION, bytes(answer)
        )
    assert time.monotonic() - started < 0.5


def test_a_directory_repeating_its_own_entries_stops_at_the_file_cap() -> None:
    """A share whose listing answers never end, every entry "." or a name holding a backslash: the walk
    counts them as the names it passes over (smbprotocol's calls stood in for by their answers)."""
    entries = []
    for name in (".", "a\\b"):
        info = FileDirectoryInformation()
        info["file_name"] = name.encode("utf-16-le")
        info["file_attributes"] = 0x10
        entries.append(info)

    class EndlessDots(smb._Client):
        def _open(self, path: str, directory: bool) -> Any:
            return None

        @staticmethod
        def _batch(handle: Any) -> list[Any]:
            return entries * 100

        async def _close(self, handle: Any) -> None:
            return None

    limits = Limits(timeout=1.0, service_budget=5.0)
    client = EndlessDots(Endpoint("127.0.0.1", 9), limits)
    client.trees["share"] = cast(Any, None)
    listing = filestore.Listing()
    started = time.monotonic()
    learned = Learned(None, "none", limits)
    asyncio.run(asyncio.wait_for(filestore.walk(client.list_directory, listing, learned), 5))
    assert time.monotonic() - started < 3.0
    assert listing.entries == [filestore.Entry("share", None, True)]


def test_a_send_the_server_never_reads_is_cut_without_blocking_the_event_loop() -> None:
    """A server that reads nothing (with a tiny window) blocks smbprotocol's send, holding the lock its
    close takes: the timeout's abort must not wait on it (the event loop would hang for good)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        port = server.getsockname()[1]
        client = smb._Client(Endpoint("127.0.0.1", port), Limits(timeout=0.5, service_budget=3.0))
        client.connection.transport = smb._CappedTcp("127.0.0.1", port, 1)
        client.connection.transport.connect()
        accepted, _ = server.accept()
        with accepted:
            outcome: list[float] = []

            def run_it() -> None:
                started = time.monotonic()
                with contextlib.suppress(Exception):
                    asyncio.run(client.call(client.connection.transport.send, bytes(10**7)))
                outcome.append(time.monotonic() - started)

            runner = threading.Thread(target=run_it, daemon=True)
            runner.start()
            runner.join(5.0)
            assert outcome and outcome[0] < 2.0
