"""Numbers out of every column's range: a server announcing counts past 2**63 is one finding with unknown
counts, never the end of a scan; a finding that cannot be stored is recorded with an error, and an index
that keeps failing ends the scan in one line."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import hostile
import pytest
from hostile_text import leaksonar, serving

from leaksonar.model import Finding, Identity, Limits, Software
from leaksonar.protocols.redis import PROTOCOL
from leaksonar.scan import engine
from leaksonar.scan.engine import RecordingFailed, ScanOptions, examine_open_ports, run_scan
from leaksonar.store.db import Store
from leaksonar.targets import TargetSpace

HUGE = b"999999999999999999999999999"
FAST = Limits(timeout=1.0, service_budget=5.0)


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _redis(keyspace: bytes, memory: bytes = b"1048576", info: bool = True) -> hostile.Handler:
    """A Redis whose INFO announces `keyspace` and `memory` (or refuses INFO) and whose DBSIZE is HUGE."""

    def answer(command: list[bytes]) -> bytes:
        verb = command[0].upper()
        if verb == b"INFO":
            if not info:
                return b"-ERR unknown command 'INFO'\r\n"
            info_text = b"redis_version:7.0.15\r\nused_memory:%s\r\n# Keyspace\r\n%s\r\n"
            return _bulk(info_text % (memory, keyspace))
        if verb == b"DBSIZE":
            return b":%s\r\n" % HUGE
        if verb == b"SELECT":
            return b"+OK\r\n"
        if verb == b"SCAN":
            return b"*2\r\n$1\r\n0\r\n*1\r\n" + _bulk(b"k")
        if verb == b"TYPE":
            return b"+string\r\n"
        if verb == b"GETRANGE":
            return _bulk(b"v")
        return b"-ERR unknown command\r\n"

    return hostile.redis(answer)


OVER = _redis(b"db0:keys=9223372036854775808,expires=0", b"1e309")
"""Keys one past the largest 64-bit number; memory as an infinite float."""
SUMMED = _redis(b"db0:keys=9223372036854775000,expires=0\r\ndb1:keys=9223372036854775000,expires=0")
"""Two databases each in range, whose sum is not."""
GOOD = _redis(b"db0:keys=1,expires=0")


@pytest.mark.parametrize(
    ("handler", "size"),
    [(OVER, None), (SUMMED, 1048576), (_redis(b"", info=False), None)],
    ids=["over", "summed", "dbsize"],
)
def test_counts_out_of_range_are_unknown(handler: hostile.Handler, size: int | None) -> None:
    identity = Identity("redis", Software("redis"), "unknown")
    found, _ = hostile.run(PROTOCOL, handler, identity, FAST)
    assert (found.auth, found.rows, found.size_bytes) == ("none", None, size)
    assert found.rows_estimated is False
    assert [c.rows for c in found.collections] in ([None], [9223372036854775000] * 2)


def test_a_scan_with_a_hostile_count_completes(tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    with serving(OVER, SUMMED, GOOD) as ports:
        done = leaksonar("scan", "127.0.0.1", "-p", ",".join(map(str, ports)), "--db", str(db), "-q")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    with sqlite3.connect(db) as conn:
        stored = dict(conn.execute("SELECT port, rows FROM services").fetchall())
        status = conn.execute("SELECT status FROM scans").fetchone()[0]
    assert stored == {ports[0]: None, ports[1]: None, ports[2]: 1}
    assert status == "done"


def _scan(ports: list[int], on_finding: object) -> None:
    space = TargetSpace([(0x7F000001, 0x7F000001)], tuple(ports), 1)
    options = ScanOptions(timeout=1.0, limits=FAST)
    asyncio.run(run_scan(space, options, "s", on_finding))  # type: ignore[arg-type]


def test_a_finding_that_cannot_be_stored_is_recorded_with_its_error(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It comes in one batch with a good one: the refused batch is stored again one finding at a time."""
    stored: list[Finding] = []
    batches: list[list[int]] = []

    def store(batch: list[Finding]) -> None:
        batches.append([finding.port for finding in batch])
        if any(finding.rows == 1 and finding.port == bad for finding in batch):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        stored.extend(batch)

    monkeypatch.setattr(engine, "BATCH_EVERY", 60.0)  # both findings stored at the end, together
    with serving(GOOD, GOOD) as ports:
        bad = ports[0]
        _scan(ports, store)
    assert sorted(batches[0]) == sorted(ports)
    by_port = {finding.port: finding for finding in stored}
    assert set(by_port) == set(ports)
    assert by_port[ports[1]].rows == 1
    assert by_port[bad].rows is None
    assert [e.message for e in by_port[bad].errors if e.kind == "unknown"] == [
        "The finding could not be recorded: OverflowError: Python int too large to convert to SQLite INTEGER."
    ]
    assert f"127.0.0.1:{bad}: its finding could not be recorded" in caplog.text


def test_an_index_that_keeps_failing_ends_the_scan() -> None:
    def store(batch: list[Finding]) -> None:
        raise OSError(28, "No space left on device")

    with serving(*[GOOD] * 6) as ports, pytest.raises(RecordingFailed, match="No space left on device"):
        _scan(ports, store)


def _examine(ports: list[int], on_findings: Callable[[list[Finding]], None]) -> None:
    listed = iter([("127.0.0.1", port, at) for at, port in enumerate(ports)])
    asyncio.run(examine_open_ports(listed, ScanOptions(timeout=1.0, limits=FAST), "s", on_findings))


@pytest.mark.parametrize("examine", [_scan, _examine], ids=["scan", "open-from"])
def test_a_batch_interrupted_while_it_is_stored_is_stored_as_the_scan_stops(
    examine: Callable[[list[int], Callable[[list[Finding]], None]], None],
) -> None:
    """SIGTERM to a scan started in the background (Ctrl-C ignored) raises KeyboardInterrupt wherever the
    scan is: here while the first batch is stored, with a silent service still being identified. The
    interrupted batch is stored as the scan stops (a scan of open ports read from a file too, whose
    in-flight inspections are then cancelled), not lost with its "findings so far are stored"."""
    stored: list[int] = []
    calls = 0

    def store(batch: list[Finding]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyboardInterrupt
        stored.extend(finding.port for finding in batch)

    with serving(GOOD, hostile.silent) as ports, pytest.raises(KeyboardInterrupt):
        examine(ports, store)
    assert ports[0] in stored


def test_the_index_stores_a_record_with_numbers_past_64_bits(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "index.db"))
    huge = Finding(
        ip="127.0.0.1",
        port=6379,
        protocol="redis",
        software=Software("redis", "7"),
        auth="none",
        exposed=True,
        time="2026-12-01T00:00:00Z",
        scan_id="s",
        rows=2**70,
        size_bytes=-(2**64),
        network={"asn": 2**80, "org": "org"},
    )
    store.findings.add([huge])
    with sqlite3.connect(tmp_path / "index.db") as conn:
        assert conn.execute("SELECT rows, size_bytes, asn FROM services").fetchall() == [(None, None, None)]
    assert [f.rows for f in store.findings.of_scan("s")] == [2**70]  # the record keeps what was said
