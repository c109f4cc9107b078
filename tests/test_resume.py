"""Crash safety: a scan killed (kill -9) or interrupted (Ctrl-C) mid-way is finished by `scan --resume`,
with the same findings as a clean scan, nothing stored twice and the store intact."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import pytest
from conftest import lab_block, leaksonar

from leaksonar.targets import TargetSpace, build_space

EXTRA = "127.79.64.0/24"
"""Closed ports only, beside the lab: with RATE they make the scan last a few seconds."""
RATE = "3000"
SEED = "11"
RESTART_SHOWS = 500


State = tuple[str, int, int, dict[str, Any]]
"""A running scan's id, size, stored findings and checkpoint."""


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, args).fetchall()


def checkpoint(db: Path) -> State | None:
    """The scan's state once it has a checkpoint."""
    try:
        rows = query(db, "SELECT id, size, checkpoint FROM scans") if db.exists() else []
        if not rows or rows[0][2] is None:
            return None
        scan_id, size, mark = rows[0]
        found = query(db, "SELECT count(*) FROM findings WHERE scan_id = ?", scan_id)[0][0]
    except sqlite3.OperationalError:  # the scan is still making its tables
        return None
    return scan_id, size, found, json.loads(mark)


def midway(state: State) -> bool:
    """Findings stored, and a checkpoint with enough probes that a restart from zero would show."""
    return state[2] >= 3 and state[3]["probes"] >= RESTART_SHOWS


def unrecorded(state: State) -> bool:
    """The checkpoint lists an open port whose finding is not stored yet."""
    return any(shard["open"] for shard in state[3]["shards"])


def stop_midway(
    db: Path,
    targets: list[str],
    workers: int,
    how: signal.Signals,
    until: Callable[[State], bool] = midway,
    group: bool = True,
) -> tuple[str, int]:
    """Start a scan of `targets`; once its state satisfies `until`, send `how` to its process group (to the
    scan's own process only, not its workers, without `group`). Returns the scan id and the exit code; its
    stderr goes to `db`.stderr."""
    command = [sys.executable, "-m", "leaksonar", "scan", "--db", str(db), "--rate", RATE, "--seed", SEED]
    with db.with_suffix(".stderr").open("w") as errors:  # the scan keeps its own copy of the file
        process = subprocess.Popen(
            [*command, "--workers", str(workers), "-q", *targets],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the scan ended first: {db.with_suffix('.stderr').read_text()}"
            state = checkpoint(db)
            if state and until(state):
                (os.killpg if group else os.kill)(process.pid, how)
                return state[0], process.wait(30)
            time.sleep(0.05)
        raise AssertionError("the scan did not get there within 60 s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "workers", "group", "status"),
    [
        (signal.SIGKILL, 1, True, "running"),
        (signal.SIGINT, 2, True, "interrupted"),
        (signal.SIGTERM, 2, True, "interrupted"),
        (signal.SIGTERM, 2, False, "interrupted"),
    ],
    ids=["kill-9", "ctrl-c-2-workers", "sigterm-2-workers", "sigterm-to-the-scan-only"],
)
def test_resume_finishes_a_stopped_scan_as_a_clean_scan_would(
    lab: dict[str, Any],
    scanned: dict[str, Any],
    tmp_path: Path,
    how: signal.Signals,
    workers: int,
    group: bool,
    status: str,
) -> None:
    db = tmp_path / "index.db"
    scan_id, code = stop_midway(db, [lab_block(lab), EXTRA], workers, how, group=group)
    said = db.with_suffix(".stderr").read_text()
    assert code == (-signal.SIGKILL if how == signal.SIGKILL else 130), said
    if how != signal.SIGKILL:  # SIGTERM as Ctrl-C: one line, and how to go on
        resume = f"continue with `leaksonar scan --resume {scan_id}`."
        assert said.splitlines()[-1] == f"leaksonar: interrupted; findings so far are stored; {resume}", said
    assert query(db, "SELECT status FROM scans")[0][0] == status
    assert query(db, "SELECT count(*) FROM findings")[0][0] >= 3  # what was committed survived the stop
    assert query(db, "PRAGMA integrity_check") == [("ok",)]

    resumed = leaksonar("scan", "--resume", scan_id, "--db", str(db), "-q")
    assert resumed.stdout == resumed.stderr == ""

    [(state, size, probes, services)] = query(db, "SELECT status, size, probes, services FROM scans")
    assert state == "done"
    assert size <= probes < size + RESTART_SHOWS  # the rest only, and probed twice only what was in flight
    rows = query(db, "SELECT ip, port, record FROM findings WHERE scan_id = ?", scan_id)
    found = {(ip, port): json.loads(record)["protocol"] for ip, port, record in rows}
    assert len(found) == len(rows) == services  # one row per service
    assert all(ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(lab_block(lab)) for ip, _ in found)
    assert found == {key: record["protocol"] for key, record in scanned["records"].items()}
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.slow
def test_an_open_port_found_but_not_recorded_at_the_crash_is_examined_on_resume(tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    silent = socket.create_server(("127.79.67.9", 0))  # accepts, never answers: a slow inspection
    port = silent.getsockname()[1]
    held: list[socket.socket] = []

    def hold() -> None:
        with suppress(OSError):  # until the listener closes
            while True:
                held.append(silent.accept()[0])

    threading.Thread(target=hold, daemon=True).start()
    try:
        args = ["127.79.67.0/24", "--read-timeout", "2", "-p", f"1-30,{port}"]
        scan_id, code = stop_midway(db, args, 1, signal.SIGKILL, until=unrecorded)
        assert code == -signal.SIGKILL
        assert query(db, "SELECT count(*) FROM findings") == [(0,)]
        leaksonar("scan", "--resume", scan_id, "--db", str(db), "-q")
    finally:
        silent.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        silent.close()
        for conn in held:
            conn.close()
    [(ip, found, record)] = query(db, "SELECT ip, port, record FROM findings WHERE scan_id = ?", scan_id)
    assert (ip, found, json.loads(record)["protocol"]) == ("127.79.67.9", port, "unknown")
    assert query(db, "SELECT status FROM scans") == [("done",)]


def test_bad_uses_of_resume_are_one_line_errors(scanned: dict[str, Any]) -> None:
    db = str(scanned["db"])
    [(done_id,)] = query(scanned["db"], "SELECT id FROM scans WHERE status = 'done' LIMIT 1")
    cases = {
        ("--resume", "20991231000000-deadbeef"): "no scan '20991231000000-deadbeef'",
        ("--resume", done_id): f"scan {done_id} already finished",
        ("--resume", done_id, "127.78.0.1", "--rate", "10", "-p", "6379"): "drop TARGETS, --ports, --rate",
    }
    for args, message in cases.items():
        result = leaksonar("scan", *args, "--db", db, check=False)
        assert result.returncode == 2, args
        assert message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert query(scanned["db"], "SELECT status FROM scans WHERE id = ?", done_id) == [("done",)]


def test_a_shard_is_entered_at_any_position_without_walking_to_it() -> None:
    space = build_space(["127.79.0.0/26"], (6379, 5432, 9200), seed=3)
    for shards in (1, 3):
        walks = [list(space.walk(k, shards)) for k in range(shards)]
        assert sorted((ip, port) for walk in walks for ip, port, _ in walk) == sorted(space)
        for k, walk in enumerate(walks):
            for start in (0, 7, len(walk) // 2):
                assert list(space.walk(k, shards, start)) == [t for t in walk if t[2] >= start]
    huge = TargetSpace([(0x7F000000, 0x7FFFFFFF)], tuple(range(1, 65536)), 5)  # 127.0.0.0/8, every port
    started = time.perf_counter()
    assert next(huge.walk(1, 4, 10**11))[2] >= 10**11
    assert time.perf_counter() - started < 1  # walking there would take hours


@pytest.mark.slow
def test_every_shard_of_a_fast_closed_port_scan_checkpoints_while_it_runs(tmp_path: Path) -> None:
    """Refusals known at once never make discovery wait; each shard still reports how far it got."""
    db = tmp_path / "fast.db"
    command = [sys.executable, "-m", "leaksonar", "scan", "127.80.0.0/12", "-p", "9", "--db", str(db)]
    process = subprocess.Popen(
        [*command, "--workers", "2", "-q"], stdout=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline, advanced = time.monotonic() + 60, False
        while not advanced and time.monotonic() < deadline and process.poll() is None:
            state = checkpoint(db)
            advanced = state is not None and all(shard["position"] for shard in state[3]["shards"])
            time.sleep(0.05)
        assert advanced and process.poll() is None, "the scan ended before every shard had checkpointed"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
